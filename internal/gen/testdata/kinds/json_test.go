package golden

import (
	"context"
	"encoding/json"
	"image"
	"math"
	"testing"
	"time"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/store/memory"
)

// checkJSON compares a generated encoder with encoding/json, on an empty
// buffer and appending to a prefix.
func checkJSON[T any](t *testing.T, v T, enc func([]byte, *T) ([]byte, error)) {
	t.Helper()
	want, wantErr := json.Marshal(v)
	got, gotErr := enc(nil, &v)
	if (wantErr != nil) != (gotErr != nil) {
		t.Errorf("%+v: encoding/json error %v, generated encoder error %v", v, wantErr, gotErr)
		return
	}
	if wantErr != nil {
		return
	}
	if string(got) != string(want) {
		t.Errorf("generated encoder:\n%s\nencoding/json:\n%s", got, want)
	}
	if got, _ := enc([]byte("prefix"), &v); string(got) != "prefix"+string(want) {
		t.Errorf("appending to a prefix gave %s", got)
	}
}

func samples() []Sample {
	return []Sample{
		{},
		{
			S: "<a href=\"x\">&amp;</a>\u2028\u2029\t\n\x01\xff é 😀", B: true,
			I: math.MinInt, I8: math.MinInt8, I16: math.MinInt16, I32: math.MinInt32, I64: math.MinInt64,
			U: math.MaxUint, U8: math.MaxUint8, U16: math.MaxUint16, U32: math.MaxUint32, U64: math.MaxUint64,
			F32: math.MaxFloat32, F64: math.MaxFloat64, By: 'x', R: '😀',
			Data: []byte{}, Raw: []uint8{0, 1, 2, 250, 251, 252, 253, 254, 255},
			Blobs:  [][]byte{nil, {}, []byte("hello")},
			Floats: []float32{0, 1.1, 1e-7, 1e21, -3.5, math.SmallestNonzeroFloat32, float32(math.Copysign(0, -1))},
			Wait:   -time.Second, At: time.Date(2024, 2, 29, 23, 59, 59, 123456789, time.FixedZone("x", 5*3600+1800)),
			Waits: []time.Duration{},
			Point: image.Pt(-1, 2), Hops: [][]image.Point{{image.Pt(3, 4)}, nil, {}},
		},
		{F32: 1e-7, F64: 1e-7, Data: []byte("a long enough text to need several base64 groups"), Waits: []time.Duration{1, time.Hour}},
		{F32: 1e20, F64: 1e21, I: 42, R: -1},
		{F64: 0.1 + 0.2, F32: 1.0 / 3},
		{F64: math.Copysign(0, -1)},
		{F64: math.SmallestNonzeroFloat64},
		{F64: math.NaN()},           // both refuse NaN
		{F32: float32(math.Inf(1))}, // and infinities
		{Floats: []float32{float32(math.Inf(-1))}},
	}
}

func TestJSON(t *testing.T) {
	for _, s := range samples() {
		checkJSON(t, s, theusAppendSample)
	}
	// The check of a state value refuses what encoding/json refuses.
	for _, s := range append(samples(), Sample{At: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}) {
		_, want := json.Marshal(s)
		if got := theusValidSample(&s); (got == nil) != (want == nil) {
			t.Errorf("%+v: encoding/json error %v, theusValidSample %v", s, want, got)
		}
	}
	for _, c := range []Counted{{}, {Seq: math.MinInt64, N: -1}, {Seq: math.MaxInt64}} {
		checkJSON(t, c, theusAppendCounted)
	}
	for _, g := range []Tagged{{}, {Code: math.MaxUint16, Label: "<>"}} {
		checkJSON(t, g, theusAppendTagged)
	}
	checkJSON(t, Note{Text: "x"}, theusAppendNote)
}

type impl struct{}

func (impl) Take(ctx context.Context, in TakeIn, out *TakeOut) error {
	s := in.Args.S
	out.EmitSampleTaken(s)
	out.EmitCounted(Counted{Seq: -7, N: 1})
	out.EmitTagged(Tagged{Code: 65535, Label: "t"})
	out.EmitNote(Note{Text: "n"})
	out.SetSample(s)
	out.SetResult(in.Timeout() + in.Sample().Wait() + in.SampleWait())
	return nil
}

// TestMessages runs a process on an engine and checks the committed
// messages: keys formatted in decimal, "" without a key, JSON payloads.
func TestMessages(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	e, err := NewEngine(ctx, State{Domain: DomainState{Timeout: time.Minute}}, impl{}, engine.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	s := samples()[1]
	s.I32 = -12
	r, err := e.Take(ctx, TakeArgs{S: s})
	if err != nil {
		t.Fatal(err)
	}
	if r.Result != time.Minute {
		t.Errorf("Result = %v", r.Result)
	}
	msgs, err := st.Undelivered(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		topic, key string
		payload    any
	}{
		{"sample.taken", "-12", s},
		{"counted", "-7", Counted{Seq: -7, N: 1}},
		{"tagged", "65535", Tagged{Code: 65535, Label: "t"}},
		{"note", "", Note{Text: "n"}},
	}
	if len(msgs) != len(want) {
		t.Fatalf("%d messages, want %d", len(msgs), len(want))
	}
	for i, w := range want {
		m := msgs[i]
		j, _ := json.Marshal(w.payload)
		if m.Topic != w.topic || m.Key != w.key || string(m.Payload) != string(j) {
			t.Errorf("message %d: %s %q %s, want %s %q %s", i, m.Topic, m.Key, m.Payload, w.topic, w.key, j)
		}
	}
	if got := e.Snapshot().Sample().Clone(); string(mustJSON(t, got)) != string(mustJSON(t, s)) {
		t.Errorf("committed sample differs")
	}
}

// smallFirst emits small payloads first: the first is encoded into the
// Out's own buffer, the others must not share it.
type smallFirst struct{ impl }

func (smallFirst) Take(ctx context.Context, in TakeIn, out *TakeOut) error {
	out.EmitCounted(Counted{Seq: 1, N: 2})
	out.EmitTagged(Tagged{Code: 3, Label: "second"})
	out.EmitNote(Note{Text: "third"})
	return nil
}

func TestPayloadsOfOneRunAreDistinct(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	e, err := NewEngine(ctx, State{}, smallFirst{}, engine.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for range 3 { // pooled calls are reused: earlier payloads must stay intact
		if _, err := e.Take(ctx, TakeArgs{}); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := st.Undelivered(ctx, 20)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`{"seq":1,"n":2}`, `{"code":3,"label":"second"}`, `{"text":"third"}`}
	if len(msgs) != 3*len(want) {
		t.Fatalf("%d messages, want %d", len(msgs), 3*len(want))
	}
	for i, m := range msgs {
		if w := want[i%len(want)]; string(m.Payload) != w {
			t.Errorf("message %d: payload %s, want %s", i, m.Payload, w)
		}
		if cap(m.Payload) != len(m.Payload) {
			t.Errorf("message %d: payload has %d spare bytes; appending to it would write into shared memory", i, cap(m.Payload)-len(m.Payload))
		}
	}
	// Appending to one payload leaves the others as they were.
	_ = append(msgs[0].Payload, "XXXXXXXX"...)
	for i, m := range msgs {
		if w := want[i%len(want)]; string(m.Payload) != w {
			t.Errorf("after an append, message %d: payload %s, want %s", i, m.Payload, w)
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
