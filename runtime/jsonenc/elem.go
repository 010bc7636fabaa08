package jsonenc

// The element encoders of the builtin types: the func([]byte, *T) ([]byte,
// error) that AppendSlice and AppendMap take for a slice or map of T.
// Generated encoders share them rather than declaring one each.

// ElemString appends *e as AppendString does.
func ElemString(b []byte, e *string) ([]byte, error) { return AppendString(b, *e), nil }

// ElemBool appends *e as AppendBool does.
func ElemBool(b []byte, e *bool) ([]byte, error) { return AppendBool(b, *e), nil }

// ElemInt appends *e as AppendInt does.
func ElemInt(b []byte, e *int) ([]byte, error) { return AppendInt(b, int64(*e)), nil }

// ElemInt8 appends *e as AppendInt does.
func ElemInt8(b []byte, e *int8) ([]byte, error) { return AppendInt(b, int64(*e)), nil }

// ElemInt16 appends *e as AppendInt does.
func ElemInt16(b []byte, e *int16) ([]byte, error) { return AppendInt(b, int64(*e)), nil }

// ElemInt32 appends *e (an int32 or a rune) as AppendInt does.
func ElemInt32(b []byte, e *int32) ([]byte, error) { return AppendInt(b, int64(*e)), nil }

// ElemInt64 appends *e as AppendInt does.
func ElemInt64(b []byte, e *int64) ([]byte, error) { return AppendInt(b, *e), nil }

// ElemUint appends *e as AppendUint does.
func ElemUint(b []byte, e *uint) ([]byte, error) { return AppendUint(b, uint64(*e)), nil }

// ElemUint8 appends *e (a uint8 or a byte) as AppendUint does.
func ElemUint8(b []byte, e *uint8) ([]byte, error) { return AppendUint(b, uint64(*e)), nil }

// ElemUint16 appends *e as AppendUint does.
func ElemUint16(b []byte, e *uint16) ([]byte, error) { return AppendUint(b, uint64(*e)), nil }

// ElemUint32 appends *e as AppendUint does.
func ElemUint32(b []byte, e *uint32) ([]byte, error) { return AppendUint(b, uint64(*e)), nil }

// ElemUint64 appends *e as AppendUint does.
func ElemUint64(b []byte, e *uint64) ([]byte, error) { return AppendUint(b, *e), nil }

// ElemFloat32 appends *e as AppendFloat does, and fails as it does.
func ElemFloat32(b []byte, e *float32) ([]byte, error) { return AppendFloat(b, float64(*e), 32) }

// ElemFloat64 appends *e as AppendFloat does, and fails as it does.
func ElemFloat64(b []byte, e *float64) ([]byte, error) { return AppendFloat(b, *e, 64) }
