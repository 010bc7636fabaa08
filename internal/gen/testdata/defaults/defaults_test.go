package golden

import (
	"encoding/json"
	"testing"
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
