package engine

import (
	"fmt"
	"slices"
	"strings"
)

// ChangeKind classifies a difference between the type a state field was
// stored with and the type the contract now declares (see CompareTypes).
type ChangeKind string

const (
	// FieldAdded: a struct gained a field. Stored values decode with its
	// zero value. Compatible.
	FieldAdded ChangeKind = "field added"
	// FieldRemoved: a struct lost a field. Stored values of it are ignored
	// (dropped at the next write). Compatible, with a warning.
	FieldRemoved ChangeKind = "field removed"
	// Widened: an integer (or float) became a wider one of the same
	// signedness, or an unsigned one a wider signed one. Every stored value
	// fits. Compatible.
	Widened ChangeKind = "widened"
	// Narrowed: the opposite of Widened; stored values may not fit.
	// Breaking.
	Narrowed ChangeKind = "narrowed"
	// TypeChanged: a value became another kind of value (string -> int,
	// struct -> slice, ...). Breaking.
	TypeChanged ChangeKind = "type changed"
	// KeyChanged: the key type of a map or a collection changed. Breaking.
	KeyChanged ChangeKind = "key type changed"
	// CollectionChanged: a collection became a plain value or the other
	// way round; they are stored differently. Breaking.
	CollectionChanged ChangeKind = "collection <-> value"
)

// Breaking reports whether stored values of the old type cannot be read as
// the new one without a migration.
func (k ChangeKind) Breaking() bool {
	switch k {
	case FieldAdded, FieldRemoved, Widened:
		return false
	}
	return true
}

// TypeChange is one difference between two types of a state field, at Path:
// the field's path followed by struct field names and "[*]" for the
// elements of a slice, map or collection ("domain.accounts[*].balance").
type TypeChange struct {
	Path string
	Kind ChangeKind
	// Old and New describe the types at Path (the field's name for
	// FieldAdded and FieldRemoved).
	Old, New string
}

func (c TypeChange) String() string {
	switch c.Kind {
	case FieldAdded:
		return c.Path + ": field added (stored values read its zero value)"
	case FieldRemoved:
		return c.Path + ": field removed (stored values of it are ignored)"
	}
	return fmt.Sprintf("%s: %s (%s -> %s)", c.Path, c.Kind, c.Old, c.New)
}

// CompareTypes compares old, the fingerprint (FieldInfo.Type) a state
// field at path was stored with, with new, the one the contract declares
// now, and lists the differences, sorted by path. Values are taken to be
// encoded as JSON: a struct field added reads as its zero value, a field
// removed is ignored, a number widened still fits. Stores call it on
// recovery: a change whose Kind is Breaking refuses the store (unless a
// migration is registered for it), the others are accepted.
//
// A fingerprint that does not parse is an error.
func CompareTypes(path, old, new string) ([]TypeChange, error) {
	ot, err := parseFingerprint(old)
	if err != nil {
		return nil, fmt.Errorf("stored type of %s: %w", path, err)
	}
	nt, err := parseFingerprint(new)
	if err != nil {
		return nil, fmt.Errorf("declared type of %s: %w", path, err)
	}
	c := typeComparer{seen: map[[2]*fpType]bool{}}
	c.compare(path, ot, nt)
	slices.SortStableFunc(c.changes, func(a, b TypeChange) int { return strings.Compare(a.Path, b.Path) })
	return c.changes, nil
}

// fpType is a parsed fingerprint (see internal/gen's fingerprint for the
// grammar): a name (builtin, or a type by name) with an optional
// description, a slice, a map or a collection.
type fpType struct {
	name   string    // "int64", "User", "example.com/money.Amount"; "" for [], map, collection
	kind   byte      // 'n' name, 's' struct {fields}, 'u' named over (under), '[' slice, 'm' map, 'c' collection
	fields []fpField // 's'
	elem   *fpType   // '[', 'm', 'c', 'u' (the underlying type)
	key    *fpType   // 'm', 'c'
	ref    *fpType   // 'n': the described type this name refers to, if any
}

type fpField struct {
	name string
	typ  *fpType
}

type fpParser struct {
	s    string
	i    int
	defs map[string]*fpType // described types by name, for references by name
	refs []*fpType          // name-only types that may refer to a def
}

func parseFingerprint(s string) (*fpType, error) {
	p := &fpParser{s: s, defs: map[string]*fpType{}}
	t, err := p.typ()
	if err == nil && p.i != len(s) {
		err = p.errorf("unexpected %q", s[p.i:])
	}
	if err != nil {
		return nil, err
	}
	// A type written by name where it occurs again (inside itself, or
	// after its first occurrence in the compact form) is its description.
	for _, r := range p.refs {
		if d, ok := p.defs[r.name]; ok {
			r.ref = d
		}
	}
	return t, nil
}

func (p *fpParser) errorf(format string, args ...any) error {
	return fmt.Errorf("fingerprint %q at %d: %s", p.s, p.i, fmt.Sprintf(format, args...))
}

func (p *fpParser) eat(prefix string) bool {
	if strings.HasPrefix(p.s[p.i:], prefix) {
		p.i += len(prefix)
		return true
	}
	return false
}

func (p *fpParser) typ() (*fpType, error) {
	switch {
	case p.eat("[]"):
		e, err := p.typ()
		return &fpType{kind: '[', elem: e}, err
	case p.eat("map["):
		return p.keyed('m')
	case p.eat("collection["):
		return p.keyed('c')
	}
	j := p.i
	for p.i < len(p.s) && !strings.ContainsRune(" ,{}[]()", rune(p.s[p.i])) {
		p.i++
	}
	t := &fpType{name: p.s[j:p.i], kind: 'n'}
	if t.name == "" && !strings.HasPrefix(p.s[p.i:], "{") {
		return nil, p.errorf("expected a type")
	}
	switch {
	case p.eat("{"):
		t.kind = 's'
		for !p.eat("}") {
			if len(t.fields) > 0 && !p.eat(", ") {
				return nil, p.errorf("expected \", \" or \"}\"")
			}
			j := p.i
			for p.i < len(p.s) && p.s[p.i] != ' ' {
				p.i++
			}
			name := p.s[j:p.i]
			if !p.eat(" ") || name == "" {
				return nil, p.errorf("expected a field name and its type")
			}
			ft, err := p.typ()
			if err != nil {
				return nil, err
			}
			t.fields = append(t.fields, fpField{name, ft})
		}
	case p.eat("("):
		t.kind = 'u'
		u, err := p.typ()
		if err != nil {
			return nil, err
		}
		if !p.eat(")") {
			return nil, p.errorf("expected \")\"")
		}
		t.elem = u
	default:
		p.refs = append(p.refs, t)
		return t, nil
	}
	if t.name != "" && t.name != "struct" {
		if _, ok := p.defs[t.name]; !ok {
			p.defs[t.name] = t
		}
	}
	return t, nil
}

func (p *fpParser) keyed(kind byte) (*fpType, error) {
	k, err := p.typ()
	if err != nil {
		return nil, err
	}
	if !p.eat("]") {
		return nil, p.errorf("expected \"]\"")
	}
	e, err := p.typ()
	return &fpType{kind: kind, key: k, elem: e}, err
}

// describe writes t back, briefly: a struct by name (or "struct{...}").
func (t *fpType) describe() string {
	switch t.kind {
	case '[':
		return "[]" + t.elem.describe()
	case 'm':
		return "map[" + t.key.describe() + "]" + t.elem.describe()
	case 'c':
		return "collection[" + t.key.describe() + "]" + t.elem.describe()
	case 's':
		if t.name == "" || t.name == "struct" {
			return "struct{...}"
		}
	}
	return t.name
}

type typeComparer struct {
	changes []TypeChange
	seen    map[[2]*fpType]bool // pairs compared already: recursive types end
}

func (c *typeComparer) add(path string, kind ChangeKind, o, n *fpType) {
	c.changes = append(c.changes, TypeChange{Path: path, Kind: kind, Old: o.describe(), New: n.describe()})
}

func (c *typeComparer) compare(path string, o, n *fpType) {
	o, n = o.resolve(), n.resolve()
	if c.seen[[2]*fpType{o, n}] {
		return
	}
	c.seen[[2]*fpType{o, n}] = true
	// A named type of another package is stored as its underlying type.
	for o.kind == 'u' {
		o = o.elem.resolve()
	}
	for n.kind == 'u' {
		n = n.elem.resolve()
	}
	if (o.kind == 'c') != (n.kind == 'c') {
		c.add(path, CollectionChanged, o, n)
		return
	}
	if o.kind != n.kind {
		c.add(path, TypeChanged, o, n)
		return
	}
	switch o.kind {
	case 'n':
		if o.name != n.name {
			c.add(path, numberChange(o.name, n.name), o, n)
		}
	case '[':
		// []byte is stored as base64: its element type is not a number.
		if isByte(o.elem) != isByte(n.elem) {
			c.add(path, TypeChanged, o, n)
			return
		}
		c.compare(path+"[*]", o.elem, n.elem)
	case 'm', 'c':
		if o.key.describe() != n.key.describe() {
			c.add(path, KeyChanged, o, n)
			return
		}
		c.compare(path+"[*]", o.elem, n.elem)
	case 's':
		for _, of := range o.fields {
			nf := n.field(of.name)
			if nf == nil {
				c.changes = append(c.changes, TypeChange{Path: path + "." + of.name, Kind: FieldRemoved, Old: of.typ.describe()})
				continue
			}
			c.compare(path+"."+of.name, of.typ, nf.typ)
		}
		for _, nf := range n.fields {
			if o.field(nf.name) == nil {
				c.changes = append(c.changes, TypeChange{Path: path + "." + nf.name, Kind: FieldAdded, New: nf.typ.describe()})
			}
		}
	}
}

// resolve returns the type a name refers to (t itself if none).
func (t *fpType) resolve() *fpType {
	if t.ref != nil {
		return t.ref
	}
	return t
}

func (t *fpType) field(name string) *fpField {
	for i := range t.fields {
		if t.fields[i].name == name {
			return &t.fields[i]
		}
	}
	return nil
}

func isByte(t *fpType) bool { return t.kind == 'n' && t.name == "uint8" }

// numberBits gives the size and signedness of the builtin numbers; int
// and uint are taken at their widest (64 bits), which every platform
// Theus supports has.
var numberBits = map[string]struct {
	bits   int
	signed byte // 'i' signed, 'u' unsigned, 'f' float
}{
	"int8": {8, 'i'}, "int16": {16, 'i'}, "int32": {32, 'i'}, "int64": {64, 'i'}, "int": {64, 'i'},
	"uint8": {8, 'u'}, "uint16": {16, 'u'}, "uint32": {32, 'u'}, "uint64": {64, 'u'}, "uint": {64, 'u'}, "uintptr": {64, 'u'},
	"float32": {32, 'f'}, "float64": {64, 'f'},
}

// numberChange classifies a change of builtin type from o to n.
func numberChange(o, n string) ChangeKind {
	ob, ok1 := numberBits[o]
	nb, ok2 := numberBits[n]
	switch {
	case !ok1 || !ok2:
		return TypeChanged
	case ob.signed == nb.signed && ob.bits <= nb.bits,
		ob.signed == 'u' && nb.signed == 'i' && ob.bits < nb.bits:
		return Widened
	case ob.signed == nb.signed,
		ob.signed == 'u' && nb.signed == 'i',
		ob.signed == 'i' && nb.signed == 'u':
		return Narrowed
	}
	return TypeChanged
}

// Evolution is how the state a store holds relates to the contract that
// opens it (CompareFields).
type Evolution struct {
	// Record lists the declared fields whose fingerprint the store must
	// record: new ones, and those whose type changed compatibly. A store
	// records them in the transaction of its next commit, so that until
	// then the data may still be opened by the contract that wrote it.
	Record []FieldInfo
	// Removed lists the stored paths the contract no longer declares:
	// their values are ignored, and the store forgets them with the next
	// commit.
	Removed []string
	// Changes lists, per declared field stored with another type, the
	// differences (CompareTypes), compatible or not.
	Changes []TypeChange
	// Warnings describe the compatible changes that drop stored values:
	// removed fields, removed struct fields. Stores return them in
	// Recovered.Warnings.
	Warnings []string
	// Drift describes the changes that stored values cannot follow, one
	// line per path, sorted: a store refuses to recover.
	Drift []string
	// Migrate lists the declared fields stored with another type for which
	// a migration is registered (Migrator): the store converts their
	// stored values (Convert) and writes the state again, with the new
	// types recorded, in one transaction, before it recovers. They are in
	// Record too; their changes are not in Drift or Warnings.
	Migrate []FieldInfo
	// Convert holds the conversion of each path of Migrate.
	Convert map[string]func(data []byte) ([]byte, error)
}

// CompareFields compares the fields a store recorded with those the
// contract declares (codec.Fields()), by the rules of CompareTypes, and
// says what the store must do: record, forget, warn, migrate or refuse. It
// is the one comparison every durable store makes, so that all of them
// accept and refuse the same changes.
func CompareFields(stored []FieldInfo, codec StateCodec) Evolution {
	var ev Evolution
	declared := codec.Fields()
	migrator, _ := codec.(Migrator)
	byPath := make(map[string]FieldInfo, len(stored))
	for _, f := range stored {
		byPath[f.Path] = f
	}
	for _, d := range declared {
		s, ok := byPath[d.Path]
		delete(byPath, d.Path)
		switch {
		case !ok:
			ev.Record = append(ev.Record, d)
			continue
		case s.Type == d.Type && s.Collection == d.Collection:
			continue
		case s.Collection != d.Collection:
			ev.Drift = append(ev.Drift, fmt.Sprintf("%s: %s (%s -> %s)", d.Path, CollectionChanged, s.Type, d.Type))
			continue
		}
		if migrator != nil {
			if convert, ok := migrator.Migration(d.Path); ok && d.Collection && !sameKey(s.Type, d.Type) {
				ev.Drift = append(ev.Drift, fmt.Sprintf("%s: %s (%s -> %s): a migration keeps the keys", d.Path, KeyChanged, s.Type, d.Type))
				continue
			} else if ok {
				if ev.Convert == nil {
					ev.Convert = make(map[string]func([]byte) ([]byte, error))
				}
				ev.Convert[d.Path] = convert
				ev.Migrate = append(ev.Migrate, d)
				ev.Record = append(ev.Record, d)
				continue
			}
		}
		changes, err := CompareTypes(d.Path, s.Type, d.Type)
		if err != nil {
			ev.Drift = append(ev.Drift, fmt.Sprintf("%s is stored as %s but the contract declares %s (%v)", d.Path, s.Type, d.Type, err))
			continue
		}
		ev.Changes = append(ev.Changes, changes...)
		breaking := false
		for _, c := range changes {
			switch {
			case c.Kind.Breaking():
				breaking = true
				ev.Drift = append(ev.Drift, c.String())
			case c.Kind == FieldRemoved:
				ev.Warnings = append(ev.Warnings, c.String())
			}
		}
		if !breaking {
			ev.Record = append(ev.Record, d)
		}
	}
	for _, s := range stored {
		if _, ok := byPath[s.Path]; ok {
			ev.Removed = append(ev.Removed, s.Path)
			ev.Warnings = append(ev.Warnings, s.Path+": state field removed from the contract (stored values are ignored)")
		}
	}
	slices.Sort(ev.Removed)
	slices.Sort(ev.Warnings)
	slices.Sort(ev.Drift)
	return ev
}

// sameKey reports whether two collection fingerprints have the same key
// type.
func sameKey(a, b string) bool {
	ta, err1 := parseFingerprint(a)
	tb, err2 := parseFingerprint(b)
	return err1 == nil && err2 == nil && ta.kind == 'c' && tb.kind == 'c' && ta.key.describe() == tb.key.describe()
}
