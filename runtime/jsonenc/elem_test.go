package jsonenc

import (
	"encoding/json"
	"math"
	"testing"
)

// elemCase checks that elem appends each of vs as encoding/json.Marshal
// writes it, after what b already holds.
func elemCase[T any](t *testing.T, name string, elem func([]byte, *T) ([]byte, error), vs ...T) {
	t.Helper()
	for _, v := range vs {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := elem([]byte("x"), &v)
		if err != nil || string(got) != "x"+string(want) {
			t.Errorf("%s(%v) = %q, %v; want %q", name, v, got, err, "x"+string(want))
		}
	}
}

func TestElemsMatchEncodingJSON(t *testing.T) {
	elemCase(t, "ElemString", ElemString, "", "a\"b<>&\u2028", "héllo")
	elemCase(t, "ElemBool", ElemBool, true, false)
	elemCase(t, "ElemInt", ElemInt, 0, -1, math.MaxInt, math.MinInt)
	elemCase(t, "ElemInt8", ElemInt8, math.MinInt8, math.MaxInt8)
	elemCase(t, "ElemInt16", ElemInt16, math.MinInt16, math.MaxInt16)
	elemCase(t, "ElemInt32", ElemInt32, math.MinInt32, math.MaxInt32, 'é')
	elemCase(t, "ElemInt64", ElemInt64, math.MinInt64, math.MaxInt64)
	elemCase(t, "ElemUint", ElemUint, 0, math.MaxUint)
	elemCase(t, "ElemUint8", ElemUint8, 0, math.MaxUint8)
	elemCase(t, "ElemUint16", ElemUint16, 0, math.MaxUint16)
	elemCase(t, "ElemUint32", ElemUint32, 0, math.MaxUint32)
	elemCase(t, "ElemUint64", ElemUint64, 0, math.MaxUint64)
	elemCase(t, "ElemFloat32", ElemFloat32, 0, 1.5, -3.4e38, 1e-7, 0.1)
	elemCase(t, "ElemFloat64", ElemFloat64, 0, 1.5, 1e21, 1e-7, 0.1, math.MaxFloat64)
}

func TestElemFloatsRefuseNaN(t *testing.T) {
	nan32, nan64 := float32(math.NaN()), math.NaN()
	if _, err := ElemFloat32(nil, &nan32); err == nil {
		t.Error("ElemFloat32(NaN): no error")
	}
	if _, err := ElemFloat64(nil, &nan64); err == nil {
		t.Error("ElemFloat64(NaN): no error")
	}
}
