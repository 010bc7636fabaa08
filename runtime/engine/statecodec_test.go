package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/store/memory"
)

// kstate has what generated code puts in a state: a struct with a slice,
// a plain integer, and collections keyed by a string and by an integer.
type kstate struct {
	Domain struct {
		User   kuser
		Logins int
		Acc    engine.Collection[string, kuser]
		ByNum  engine.Collection[int16, string]
	}
}

type kuser struct {
	Email string   `json:"email"`
	Tags  []string `json:"tags"`
}

var kfields = []engine.StateField[kstate]{
	engine.ValueField("domain.user", "User{email string, tags []string}", func(s *kstate) *kuser { return &s.Domain.User }),
	engine.ValueField("domain.logins", "int", func(s *kstate) *int { return &s.Domain.Logins }),
	engine.CollectionField("domain.acc", "collection[string]User{email string, tags []string}",
		func(s *kstate) *engine.Collection[string, kuser] { return &s.Domain.Acc }),
	engine.CollectionField("domain.by_num", "collection[int16]string",
		func(s *kstate) *engine.Collection[int16, string] { return &s.Domain.ByNum }),
}

// codecStore captures the StateCodec the engine hands to Recover.
type codecStore struct {
	*memory.Store
	codec engine.StateCodec
}

func (c *codecStore) Recover(ctx context.Context, sc engine.StateCodec) (*engine.Recovered, error) {
	c.codec = sc
	return c.Store.Recover(ctx, sc)
}

func stateCodec(t *testing.T, opts ...engine.Option) engine.StateCodec {
	t.Helper()
	st := &codecStore{Store: memory.New()}
	sch := &engine.Schema[kstate]{Clone: func(s *kstate) kstate { return *s }, State: kfields}
	e, err := engine.New(context.Background(), sch, kstate{}, append(opts, engine.WithStore(st))...)
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	if st.codec == nil {
		t.Fatal("the engine passed no codec to Recover")
	}
	return st.codec
}

func TestStateCodecRoundTrip(t *testing.T) {
	sc := stateCodec(t)
	if sc.Format() != "json" {
		t.Fatalf("Format = %q, want json", sc.Format())
	}
	want := []engine.FieldInfo{
		{Path: "domain.user", Type: "User{email string, tags []string}"},
		{Path: "domain.logins", Type: "int"},
		{Path: "domain.acc", Type: "collection[string]User{email string, tags []string}", Collection: true},
		{Path: "domain.by_num", Type: "collection[int16]string", Collection: true},
	}
	if !reflect.DeepEqual(sc.Fields(), want) {
		t.Fatalf("Fields = %+v", sc.Fields())
	}
	for path, i := range map[string]int{"domain.user": 0, "domain.user.email": 0, "domain.user.tags.x": 0, "domain.by_num": 3, "domain.nope": -1, "domain": -1, "": -1} {
		if got := sc.Field(path); got != i {
			t.Errorf("Field(%q) = %d, want %d", path, got, i)
		}
	}

	var s kstate
	s.Domain.User = kuser{Email: "a@x", Tags: []string{"t1", "t2"}}
	s.Domain.Logins = 7
	s.Domain.Acc = engine.NewCollection(map[string]kuser{"a": {Email: "a"}, "b": {Email: "b", Tags: []string{"x"}}}, nil)
	s.Domain.ByNum = engine.NewCollection(map[int16]string{-3: "minus three", 300: "three hundred"}, nil)

	d := sc.Decoder()
	for i, f := range sc.Fields() {
		if f.Collection {
			err := sc.EncodeEntries(&s, i, func(key string, data []byte) error { return d.Entry(i, key, data) })
			if err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, err := sc.AppendField(nil, &s, i)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Field(i, b); err != nil {
			t.Fatal(err)
		}
	}
	// Changes replayed after a checkpoint: an update, a delete, an insert.
	b, ok, err := sc.AppendEntry(nil, &s, 3, "300")
	if err != nil || !ok || string(b) != `"three hundred"` {
		t.Fatalf("AppendEntry(300) = %s, %v, %v", b, ok, err)
	}
	// Append means append: what dst held stays in front.
	if b, ok, err := sc.AppendEntry([]byte("prefix "), &s, 3, "300"); err != nil || !ok || string(b) != `prefix "three hundred"` {
		t.Fatalf("AppendEntry after a prefix = %s, %v, %v", b, ok, err)
	}
	if b, err := sc.AppendField([]byte("prefix "), &s, 0); err != nil || !bytes.HasPrefix(b, []byte("prefix ")) || len(b) == len("prefix ") {
		t.Fatalf("AppendField after a prefix = %s, %v", b, err)
	}
	if b, ok, err := sc.AppendEntry([]byte("prefix "), &s, 3, "4"); ok || err != nil || string(b) != "prefix " {
		t.Fatalf("AppendEntry of an absent key after a prefix = %q, %v, %v; want the prefix alone", b, ok, err)
	}
	if _, ok, err := sc.AppendEntry(nil, &s, 3, "4"); ok || err != nil {
		t.Fatalf("AppendEntry of an absent key: ok %v, err %v", ok, err)
	}
	if _, _, err := sc.AppendEntry(nil, &s, 3, "70000"); err == nil {
		t.Fatal("AppendEntry accepted a key out of int16's range")
	}
	for _, step := range []struct {
		i         int
		key, data string
	}{{2, "a", `{"email":"a2"}`}, {2, "b", ""}, {2, "c", `{"email":"c"}`}, {3, "5", `"five"`}} {
		var data []byte
		if step.data != "" {
			data = []byte(step.data)
		}
		if err := d.Entry(step.i, step.key, data); err != nil {
			t.Fatal(err)
		}
	}
	got, err := d.State()
	if err != nil {
		t.Fatal(err)
	}
	g := got.(*kstate)
	if !reflect.DeepEqual(g.Domain.User, s.Domain.User) || g.Domain.Logins != 7 {
		t.Fatalf("decoded %+v", g.Domain)
	}
	if m := engine.CollectionMap(g.Domain.Acc, nil); fmt.Sprint(m) != "map[a:{a2 []} c:{c []}]" {
		t.Fatalf("decoded accounts %v", m)
	}
	if m := engine.CollectionMap(g.Domain.ByNum, nil); fmt.Sprint(m) != "map[-3:minus three 5:five 300:three hundred]" {
		t.Fatalf("decoded by_num %v", m)
	}

	// Misuse is an error, not a panic.
	if _, err := sc.AppendField(nil, &s, 2); err == nil {
		t.Error("AppendField of a collection succeeded")
	}
	if _, err := sc.AppendField(nil, new(int), 0); err == nil {
		t.Error("AppendField of a state of the wrong type succeeded")
	}
	if err := sc.Decoder().Field(9, nil); err == nil {
		t.Error("Decoder.Field of an unknown field succeeded")
	}
	if err := sc.Decoder().Entry(3, "x", []byte(`"y"`)); err == nil {
		t.Error("Decoder.Entry accepted a key that is not an int16")
	}
}

type upperCodec struct{}

func (upperCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (upperCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

func TestStateCodecUsesWithCodec(t *testing.T) {
	if f := stateCodec(t, engine.WithCodec(upperCodec{})).Format(); f != "engine_test.upperCodec" {
		t.Fatalf("Format = %q", f)
	}
}

// TestStateCodecUsesGeneratedEncoders checks that the encoders generated
// code gives ValueField and CollectionField encode state values under the
// default JSON codec, and that WithCodec takes precedence over them.
func TestStateCodecUsesGeneratedEncoders(t *testing.T) {
	calls := 0
	appendUser := func(b []byte, u *kuser) ([]byte, error) {
		calls++
		j, err := json.Marshal(u)
		return append(b, j...), err
	}
	appendInt := func(b []byte, n *int) ([]byte, error) {
		calls++
		return fmt.Appendf(b, "%d", *n), nil
	}
	fields := []engine.StateField[kstate]{
		engine.ValueField("domain.user", "User{email string, tags []string}", func(s *kstate) *kuser { return &s.Domain.User }, appendUser),
		engine.ValueField("domain.logins", "int", func(s *kstate) *int { return &s.Domain.Logins }, appendInt),
		engine.CollectionField("domain.acc", "collection[string]User{email string, tags []string}",
			func(s *kstate) *engine.Collection[string, kuser] { return &s.Domain.Acc }, appendUser),
	}
	var s kstate
	s.Domain.User = kuser{Email: "a@b", Tags: []string{"x"}}
	s.Domain.Logins = 7
	s.Domain.Acc = engine.NewCollection(map[string]kuser{"k": {Email: "c@d"}}, nil)

	for _, c := range []struct {
		name      string
		opts      []engine.Option
		wantCalls bool
	}{{"default JSON", nil, true}, {"WithCodec", []engine.Option{engine.WithCodec(upperCodec{})}, false}} {
		t.Run(c.name, func(t *testing.T) {
			calls = 0
			st := &codecStore{Store: memory.New()}
			sch := &engine.Schema[kstate]{Clone: func(s *kstate) kstate { return *s }, State: fields}
			e, err := engine.New(context.Background(), sch, kstate{}, append(c.opts, engine.WithStore(st))...)
			if err != nil {
				t.Fatal(err)
			}
			e.Close()
			sc := st.codec
			var got []string
			for i := range 2 {
				b, err := sc.AppendField(nil, &s, i)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, string(b))
			}
			b, ok, err := sc.AppendEntry(nil, &s, 2, "k")
			if err != nil || !ok {
				t.Fatalf("AppendEntry: %v, %v", ok, err)
			}
			got = append(got, string(b))
			if err := sc.EncodeEntries(&s, 2, func(_ string, b []byte) error { got = append(got, string(b)); return nil }); err != nil {
				t.Fatal(err)
			}
			if c.wantCalls {
				want := []string{`{"email":"a@b","tags":["x"]}`, `7`, `{"email":"c@d","tags":null}`, `{"email":"c@d","tags":null}`}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("encoded %q, want %q", got, want)
				}
				if calls != 4 {
					t.Errorf("the generated encoders ran %d times, want 4", calls)
				}
			} else if calls != 0 {
				t.Errorf("the generated encoders ran %d times under WithCodec, want 0", calls)
			}
		})
	}
}
