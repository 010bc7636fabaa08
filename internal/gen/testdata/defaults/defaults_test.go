package golden

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/theus-go/theus/runtime/engine"
)

var defaulted = Order{Note: "none \"quoted\"", Open: true, Seats: -2, Max: 18446744073709551615, Ratio: 0.5}

// TestDefaultsFillWhatTheDataLacks decodes values without the defaulted
// fields, at every depth encoding/json reaches: each gets its default.
func TestDefaultsFillWhatTheDataLacks(t *testing.T) {
	var b Basket
	if err := json.Unmarshal([]byte(`{"orders":[{"id":"a"}],"by_id":{"b":{"id":"b"}},"first":{"id":"c"}}`), &b); err != nil {
		t.Fatal(err)
	}
	for i, got := range []Order{b.Orders[0], b.ByID["b"], b.First} {
		want := defaulted
		want.ID = []string{"a", "b", "c"}[i]
		if got != want {
			t.Errorf("%d: %+v, want %+v", i, got, want)
		}
	}
}

// TestDefaultsKeepStoredZeros decodes values that have the fields, as zero
// values: they keep them.
func TestDefaultsKeepStoredZeros(t *testing.T) {
	var o Order
	if err := json.Unmarshal([]byte(`{"id":"a","note":"","open":false,"seats":0,"max":0,"ratio":0,"plain":0}`), &o); err != nil {
		t.Fatal(err)
	}
	if o != (Order{ID: "a"}) {
		t.Errorf("%+v, want only the id", o)
	}
	// null leaves the value as it is, as encoding/json does.
	o = Order{ID: "x", Note: "kept"}
	if err := json.Unmarshal([]byte(`null`), &o); err != nil || o != (Order{ID: "x", Note: "kept"}) {
		t.Errorf("%+v, %v", o, err)
	}
	// A value made in Go starts at zero: defaults are for decoding.
	if (Order{}).Note != "" {
		t.Error("Order{} has a note")
	}
}

// TestDefaultsRoundTrip checks that the generated encoder and the decoder
// agree: a value encoded and decoded again is the same.
func TestDefaultsRoundTrip(t *testing.T) {
	in := Order{ID: "a", Note: "n", Seats: 3, Ratio: 1.5, Plain: 7}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Order
	if err := json.Unmarshal(data, &out); err != nil || out != in {
		t.Errorf("%+v, %v, want %+v", out, err, in)
	}
	var bad Order
	if err := json.Unmarshal([]byte(`{"seats":"x"}`), &bad); err == nil {
		t.Error("a string decoded into seats")
	}
}

// storedOnly is a durable store whose data was written before the fields
// with defaults existed: it recovers through the engine's StateCodec, as
// SQLite and PostgreSQL do.
type storedOnly struct {
	engine.Store // only Recover is called before the test ends
}

func (storedOnly) Recover(_ context.Context, codec engine.StateCodec) (*engine.Recovered, error) {
	d := codec.Decoder()
	for i, f := range codec.Fields() {
		var err error
		switch f.Path {
		case "domain.orders":
			if err = d.Entry(i, "o1", []byte(`{"id":"o1"}`)); err == nil {
				err = d.Entry(i, "o2", []byte(`{"id":"o2","note":"","open":false}`))
			}
		case "domain.basket":
			err = d.Field(i, []byte(`{"orders":[{"id":"b1"}],"first":{"id":"f"}}`))
		}
		if err != nil {
			return nil, err
		}
	}
	s, err := d.State()
	if err != nil {
		return nil, err
	}
	return &engine.Recovered{Version: 1, State: s}, nil
}

// TestDefaultsOnRecovery recovers values stored without the fields: they
// get the defaults; the fields stored as zero values keep them.
func TestDefaultsOnRecovery(t *testing.T) {
	e, err := NewEngine(context.Background(), State{}, struct{}{}, engine.WithStore(storedOnly{}))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	snap := e.Snapshot()
	o1, _ := snap.Orders().Get("o1")
	o2, _ := snap.Orders().Get("o2")
	want1, want2 := defaulted, defaulted
	want1.ID, want2.ID, want2.Note, want2.Open = "o1", "o2", "", false
	if o1.Clone() != want1 || o2.Clone() != want2 {
		t.Errorf("o1 %+v, o2 %+v, want %+v, %+v", o1.Clone(), o2.Clone(), want1, want2)
	}
	b := snap.Basket().Clone()
	if b.Orders[0].Note != defaulted.Note || b.First.Seats != defaulted.Seats {
		t.Errorf("basket %+v", b)
	}
}
