package engine

// CloneSlice deep-copies s, each element with clone; nil stays nil.
// Generated code calls it for slices whose elements need more than an
// assignment to copy.
func CloneSlice[T any](s []T, clone func(*T) T) []T {
	if s == nil {
		return nil
	}
	c := make([]T, len(s))
	for i := range s {
		c[i] = clone(&s[i])
	}
	return c
}

// CloneMap deep-copies m, each value with clone; nil stays nil. Generated
// code calls it for maps whose values need more than an assignment to
// copy.
func CloneMap[K comparable, V any](m map[K]V, clone func(*V) V) map[K]V {
	if m == nil {
		return nil
	}
	c := make(map[K]V, len(m))
	for k, v := range m {
		c[k] = clone(&v)
	}
	return c
}
