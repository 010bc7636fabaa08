package jsonenc

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"testing"

	"pgregory.net/rapid"
)

func marshal(t *rapid.T, v any) string {
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	return string(j)
}

func TestStringMatchesEncodingJSON(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := rapid.OneOf(rapid.String(), rapid.StringOf(rapid.RuneFrom([]rune("<>&\"\\\n\t\u2028\u2029\x00\x1fé")))).Draw(t, "s")
		if bs := rapid.SliceOf(rapid.Byte()).Draw(t, "raw"); len(bs) > 0 {
			s += string(bs) // invalid UTF-8 too
		}
		if got, want := string(AppendString(nil, s)), marshal(t, s); got != want {
			t.Fatalf("AppendString(%q) = %s, encoding/json = %s", s, got, want)
		}
	})
}

func TestNumbersMatchEncodingJSON(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		i := rapid.Int64().Draw(t, "i")
		u := rapid.Uint64().Draw(t, "u")
		f := rapid.Float64().Draw(t, "f")
		f32 := rapid.Float32().Draw(t, "f32")
		if got, want := string(AppendInt(nil, i)), marshal(t, i); got != want {
			t.Fatalf("int %d: %s != %s", i, got, want)
		}
		if got, want := string(AppendUint(nil, u)), marshal(t, u); got != want {
			t.Fatalf("uint %d: %s != %s", u, got, want)
		}
		for _, c := range []struct {
			v    any
			f    float64
			bits int
		}{{f, f, 64}, {f32, float64(f32), 32}} {
			got, err := AppendFloat(nil, c.f, c.bits)
			if err != nil {
				t.Fatalf("float %v: %v", c.f, err)
			}
			if want := marshal(t, c.v); string(got) != want {
				t.Fatalf("float%d %v: %s != %s", c.bits, c.f, got, want)
			}
		}
		bs := rapid.SliceOf(rapid.Byte()).Draw(t, "bytes")
		if got, want := string(AppendBytes(nil, bs)), marshal(t, bs); got != want {
			t.Fatalf("bytes %v: %s != %s", bs, got, want)
		}
	})
}

// NaN and infinities are refused with the error encoding/json gives.
func TestFloatRefusesNaNAndInf(t *testing.T) {
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		_, err := AppendFloat(nil, f, 64)
		_, want := json.Marshal(f)
		var uv *json.UnsupportedValueError
		if !errors.As(err, &uv) || err.Error() != want.Error() {
			t.Errorf("AppendFloat(%v) = %v, want a *json.UnsupportedValueError: %v", f, err, want)
		}
	}
}

func TestAppendStringDoesNotAllocate(t *testing.T) {
	b := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { b = AppendString(b[:0], "ann@example.com <x>") }); n != 0 {
		t.Errorf("AppendString allocated %v times per run", n)
	}
}

// Slices and maps, nested and nil, come out as encoding/json writes them.
func TestSliceAndMapMatchEncodingJSON(t *testing.T) {
	str := func(b []byte, s *string) ([]byte, error) { return AppendString(b, *s), nil }
	ints := func(b []byte, v *[]int64) ([]byte, error) {
		return AppendSlice(b, *v, func(b []byte, x *int64) ([]byte, error) { return AppendInt(b, *x), nil })
	}
	itoa := func(k int) string { return strconv.Itoa(k) }
	for _, c := range []struct {
		v   any
		got func() ([]byte, error)
	}{
		{[]string(nil), func() ([]byte, error) { return AppendSlice(nil, []string(nil), str) }},
		{[]string{}, func() ([]byte, error) { return AppendSlice(nil, []string{}, str) }},
		{[]string{"a", "<b>"}, func() ([]byte, error) { return AppendSlice(nil, []string{"a", "<b>"}, str) }},
		{map[int][]int64(nil), func() ([]byte, error) { return AppendMap(nil, map[int][]int64(nil), itoa, ints) }},
		{map[int][]int64{10: {1, 2}, 9: nil, 100: {}}, func() ([]byte, error) {
			return AppendMap(nil, map[int][]int64{10: {1, 2}, 9: nil, 100: {}}, itoa, ints)
		}},
	} {
		want, err := json.Marshal(c.v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.got()
		if err != nil || string(got) != string(want) {
			t.Errorf("%#v: got %s, %v; want %s", c.v, got, err, want)
		}
	}
	fail := errors.New("refused")
	if _, err := AppendSlice(nil, []int{1}, func(b []byte, _ *int) ([]byte, error) { return b, fail }); err != fail {
		t.Errorf("an element's error: %v", err)
	}
}
