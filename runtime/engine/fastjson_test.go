package engine

import (
	"encoding/json"
	"reflect"
	"testing"
	"unsafe"

	"pgregory.net/rapid"
)

type flatT struct {
	ID     string `json:"id"`
	Owner  string `json:"owner,omitempty"`
	N      int64  `json:"n"`
	U8     uint8  `json:"u8"`
	I16    int16
	B      bool   `json:"b"`
	Skip   string `json:"-"`
	Dash   int    `json:"-,"`
	Weird  int    `json:"it's"` // not a name encoding/json takes: "Weird"
	U      uint
	hidden int
}

func drawFlat(t *rapid.T) flatT {
	return flatT{
		ID: rapid.String().Draw(t, "id"), Owner: rapid.StringMatching(`[a-zé "\\<]{0,6}`).Draw(t, "owner"),
		N: rapid.Int64().Draw(t, "n"), U8: rapid.Uint8().Draw(t, "u8"), I16: rapid.Int16().Draw(t, "i16"),
		B: rapid.Bool().Draw(t, "b"), Dash: rapid.Int().Draw(t, "dash"), Weird: rapid.Int().Draw(t, "weird"),
		U: rapid.Uint().Draw(t, "u"),
	}
}

// decodeBoth decodes data with the flat decoder and with encoding/json:
// where the flat decoder accepts data, encoding/json must accept it and
// give the same value.
func decodeBoth(t *rapid.T, d *flatDecoder, data []byte) bool {
	var fast, slow flatT
	ok := d.decode(data, unsafe.Pointer(&fast))
	err := json.Unmarshal(data, &slow)
	if ok && (err != nil || fast != slow) {
		t.Fatalf("%q: flat decoder gives %+v, encoding/json %+v, %v", data, fast, slow, err)
	}
	return ok
}

// On what encoding/json writes, the flat decoder agrees with
// encoding/json; it takes every value whose strings need no escape.
func TestFlatDecoderAgreesOnEncodings(t *testing.T) {
	d := newFlatDecoder(reflect.TypeFor[flatT]())
	if d == nil {
		t.Fatal("flatT is not taken")
	}
	rapid.Check(t, func(t *rapid.T) {
		v := drawFlat(t)
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		decodeBoth(t, d, data)
		plain := rapid.StringMatching(`[a-zA-Z0-9 ]{0,8}`)
		v.ID, v.Owner = plain.Draw(t, "plain id"), plain.Draw(t, "plain owner")
		if data, _ = json.Marshal(v); !decodeBoth(t, d, data) {
			t.Fatalf("%s: declined", data)
		}
	})
}

// On any input, what the flat decoder accepts encoding/json decodes to
// the same value.
func TestFlatDecoderAgreesOnAnyInput(t *testing.T) {
	d := newFlatDecoder(reflect.TypeFor[flatT]())
	rapid.Check(t, func(t *rapid.T) {
		data, _ := json.Marshal(drawFlat(t))
		for range rapid.IntRange(0, 4).Draw(t, "edits") {
			i := rapid.IntRange(0, len(data)).Draw(t, "at")
			c := rapid.SampledFrom([]byte(`{}":,-0123456789eE.+ tfrualsn\Wiy'`+"\x00\xff")).Draw(t, "byte")
			switch rapid.IntRange(0, 2).Draw(t, "edit") {
			case 0:
				data = append(data[:i:i], append([]byte{c}, data[i:]...)...)
			case 1:
				if i < len(data) {
					data = append(data[:i:i], data[i+1:]...)
				}
			case 2:
				if i < len(data) {
					data[i] = c
				}
			}
		}
		decodeBoth(t, d, data)
	})
}

type withFloat struct{ F float64 }
type withPtr struct{ P *int }
type withEmbedded struct{ flatT }
type withCustom struct{ C custom }
type withStringOpt struct {
	N int `json:"n,string"`
}
type dupNames struct { // encoding/json picks the tagged A; the flat decoder declines
	A int `json:"X"`
	X int
}
type custom struct{ n int }

func (c *custom) UnmarshalJSON([]byte) error { c.n = 1; return nil }

// Types the flat decoder does not take: encoding/json decodes them.
func TestFlatDecoderDeclinesOtherTypes(t *testing.T) {
	for _, typ := range []reflect.Type{reflect.TypeFor[withFloat](), reflect.TypeFor[withPtr](), reflect.TypeFor[withEmbedded](),
		reflect.TypeFor[withCustom](), reflect.TypeFor[withStringOpt](), reflect.TypeFor[dupNames](), reflect.TypeFor[custom](),
		reflect.TypeFor[string](), reflect.TypeFor[map[string]int]()} {
		if newFlatDecoder(typ) != nil {
			t.Errorf("%v: taken", typ)
		}
	}
}
