package engine

import "fmt"

// Migration converts the stored values of one state path from the type an
// earlier contract gave it to the contract's (see Migrate).
type Migration struct {
	path    string
	convert func(c Codec, data []byte) ([]byte, error)
}

// Migrate declares a migration of the values stored at path, a top-level
// state field ("domain.orders"): f converts one old value, decoded as an
// Old, into the value of the field's new type. For a collection, f
// converts each entry (Old and New are entry types; keys are kept).
//
// A durable store runs it once, on recovery, when the type it recorded
// for path differs from the contract's: it decodes every stored value of
// path with the old type, converts it, and writes the whole state again
// with the new types recorded, in one transaction. A crash before that
// transaction commits leaves the data as it was (the next start runs the
// migration again, from the old values); after it, the types match and
// the migration does not run again. A failing f fails the start, with
// nothing written. A migration cannot turn a collection into a plain
// field or back, nor change a collection's key type.
func Migrate[Old, New any](path string, f func(Old) (New, error)) Migration {
	return Migration{path: path, convert: func(c Codec, data []byte) ([]byte, error) {
		var old Old
		if err := c.Unmarshal(data, &old); err != nil {
			return nil, fmt.Errorf("decode the stored value as %T: %w", old, err)
		}
		v, err := f(old)
		if err != nil {
			return nil, err
		}
		return c.Marshal(v)
	}}
}

// WithMigrations registers migrations of stored state (see Migrate) for
// the store's recovery. Two migrations of one path: the last one counts.
func WithMigrations(ms ...Migration) Option {
	return func(o *options) {
		if o.migrations == nil {
			o.migrations = make(map[string]Migration)
		}
		for _, m := range ms {
			o.migrations[m.path] = m
		}
	}
}

// Migrator is implemented by the StateCodec the engine gives a store when
// migrations are registered (WithMigrations): Migration returns the
// conversion of the stored values of path, if one is registered. Stores
// find it through CompareFields (Evolution.Migrate).
type Migrator interface {
	Migration(path string) (convert func(data []byte) ([]byte, error), ok bool)
}

func (c *stateCodec) Migration(path string) (func([]byte) ([]byte, error), bool) {
	m, ok := c.migrations[path]
	if !ok {
		return nil, false
	}
	return func(data []byte) ([]byte, error) {
		b, err := m.convert(c.codec, data)
		if err != nil {
			return nil, fmt.Errorf("theus: migrate %s: %w", path, err)
		}
		return b, nil
	}, true
}
