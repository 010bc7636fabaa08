package engine_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/theus-go/theus/runtime/engine"
)

// refuser is a codec that refuses negative integers.
type refuser struct{}

var errNegative = errors.New("refuser: negative")

func (refuser) Marshal(v any) ([]byte, error) {
	if n, ok := v.(*int); ok && *n < 0 {
		return nil, errNegative
	}
	return json.Marshal(v)
}

func (refuser) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

func TestCheckValue(t *testing.T) {
	errOdd := errors.New("odd")
	odd := func(n *int) error {
		if *n%2 != 0 {
			return errOdd
		}
		return nil
	}
	one, minus := 1, -1
	for _, tc := range []struct {
		name  string
		codec engine.Codec
		v     *int
		valid func(*int) error
		want  error
	}{
		{"neither: not looked at", nil, &one, nil, nil},
		{"valid refuses", nil, &one, odd, errOdd},
		{"the codec refuses", refuser{}, &minus, odd, errNegative},
		{"the codec, not valid, decides", refuser{}, &one, odd, nil},
	} {
		err := engine.CheckValue(tc.codec, "domain.n", tc.v, tc.valid)
		if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) || err != nil && err.Error() != "theus: encode domain.n: "+tc.want.Error() {
			t.Errorf("%s: %v, want %v naming domain.n", tc.name, err, tc.want)
		}
	}

	pending := []engine.Pending[int64, int]{{Key: 1, Value: &one}, {Key: 2}, {Key: 3, Value: &minus}}
	err := engine.CheckEntries(refuser{}, "domain.m", pending, nil)
	if !errors.Is(err, errNegative) || err.Error() != "theus: encode domain.m[3]: refuser: negative" {
		t.Errorf("CheckEntries = %v, want the refusal of entry 3", err)
	}
	if err := engine.CheckEntries(nil, "domain.m", pending, nil); err != nil {
		t.Errorf("CheckEntries with neither codec nor check = %v", err)
	}
}
