package engine

import (
	"encoding"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
	"unsafe"
)

// flatDecoder decodes, without reflection per value, the JSON that
// encoding/json (and the generated appendJSON functions) write for a
// struct whose fields are strings, booleans and integers: an object with
// no whitespace, each key a field's JSON name, strings without escapes.
// Recovering a large collection is mostly decoding its entries: this
// takes a fifth of encoding/json's time. Anything else (an escape, a
// number that does not fit, an unknown key, null, whitespace) it declines,
// and the caller uses encoding/json: the value it leaves is then the one
// encoding/json leaves, by construction (it accepts only input on which
// the two agree).
type flatDecoder struct {
	fields []flatField
}

type flatField struct {
	name string // the JSON key
	off  uintptr
	kind reflect.Kind
	bits int
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// newFlatDecoder returns the decoder of values of type t, or nil when t is
// not such a struct.
func newFlatDecoder(t reflect.Type) *flatDecoder {
	custom := func(t reflect.Type) bool {
		p := reflect.PointerTo(t)
		return t.Implements(jsonUnmarshaler) || p.Implements(jsonUnmarshaler) || t.Implements(textUnmarshaler) || p.Implements(textUnmarshaler)
	}
	if t.Kind() != reflect.Struct || custom(t) {
		return nil
	}
	d := &flatDecoder{}
	seen := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous {
			return nil
		}
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(","+opts+",", ",string,") {
			return nil
		}
		if !validTag(name) {
			name = f.Name // as encoding/json does
		}
		if seen[name] || custom(f.Type) {
			return nil
		}
		seen[name] = true
		ff := flatField{name: name, off: f.Offset, kind: f.Type.Kind()}
		switch ff.kind {
		case reflect.String, reflect.Bool:
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			ff.bits = f.Type.Bits()
		default:
			return nil
		}
		d.fields = append(d.fields, ff)
	}
	return d
}

// validTag is encoding/json's test of a name in a json tag: a name it
// does not take is replaced by the field's.
func validTag(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			return false
		}
	}
	return true
}

// decode decodes data into the struct at p, a zero value, and reports
// whether it could; when it could not, p may hold some fields: the caller
// zeroes it before it decodes otherwise.
func (d *flatDecoder) decode(data []byte, p unsafe.Pointer) bool {
	if len(data) < 2 || data[0] != '{' || data[len(data)-1] != '}' {
		return false
	}
	b := data[1 : len(data)-1]
	for len(b) > 0 {
		// "key":
		key, rest, ok := flatString(b)
		if !ok || len(rest) == 0 || rest[0] != ':' {
			return false
		}
		b = rest[1:]
		var f *flatField
		for i := range d.fields {
			if d.fields[i].name == key {
				f = &d.fields[i]
				break
			}
		}
		if f == nil {
			return false
		}
		at := unsafe.Add(p, f.off)
		switch f.kind {
		case reflect.String:
			s, rest, ok := flatString(b)
			if !ok {
				return false
			}
			*(*string)(at) = strings.Clone(s)
			b = rest
		case reflect.Bool:
			switch {
			case len(b) >= 4 && string(b[:4]) == "true":
				*(*bool)(at), b = true, b[4:]
			case len(b) >= 5 && string(b[:5]) == "false":
				*(*bool)(at), b = false, b[5:]
			default:
				return false
			}
		default:
			n := 0
			for n < len(b) && (b[n] == '-' || b[n] >= '0' && b[n] <= '9') {
				n++
			}
			num := b[:n]
			if n == 0 || (num[0] == '0' && n > 1) || (n > 1 && num[0] == '-' && num[1] == '0') {
				return false // not JSON's form of an integer
			}
			if !setInt(at, f.kind, f.bits, num) {
				return false
			}
			b = b[n:]
		}
		if len(b) == 0 {
			break
		}
		if b[0] != ',' || len(b) == 1 {
			return false
		}
		b = b[1:]
	}
	return true
}

// flatString reads a JSON string with no escape, no control character and
// valid UTF-8 at the start of b, as encoding/json would decode it.
func flatString(b []byte) (s string, rest []byte, ok bool) {
	if len(b) == 0 || b[0] != '"' {
		return "", nil, false
	}
	ascii := true
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			if !ascii && !utf8.Valid(b[1:i]) {
				return "", nil, false
			}
			return unsafe.String(unsafe.SliceData(b[1:]), i-1), b[i+1:], true
		case c == '\\' || c < 0x20:
			return "", nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", nil, false
}

// setInt stores the integer num, of a field of kind and size bits, at p.
func setInt(p unsafe.Pointer, kind reflect.Kind, bits int, num []byte) bool {
	s := unsafe.String(unsafe.SliceData(num), len(num))
	switch kind {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v, err := strconv.ParseInt(s, 10, bits)
		if err != nil {
			return false
		}
		switch kind {
		case reflect.Int:
			*(*int)(p) = int(v)
		case reflect.Int8:
			*(*int8)(p) = int8(v)
		case reflect.Int16:
			*(*int16)(p) = int16(v)
		case reflect.Int32:
			*(*int32)(p) = int32(v)
		default:
			*(*int64)(p) = v
		}
	default:
		v, err := strconv.ParseUint(s, 10, bits)
		if err != nil {
			return false
		}
		switch kind {
		case reflect.Uint:
			*(*uint)(p) = uint(v)
		case reflect.Uint8:
			*(*uint8)(p) = uint8(v)
		case reflect.Uint16:
			*(*uint16)(p) = uint16(v)
		case reflect.Uint32:
			*(*uint32)(p) = uint32(v)
		default:
			*(*uint64)(p) = v
		}
	}
	return true
}
