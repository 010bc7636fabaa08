package sqlite

import "testing"

func TestLegacyFingerprint(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"User{id string, tags []string}", "User{id string, tags []string}"},
		{"time.Time", "time.Time"},
		{"map[string]time.Duration", "map[string]time.Duration"},
		{"[]image.Point{X int, Y int}", "[]image.Point"},
		{"Account{id string, limit example.com/shop/money.Amount{units int64, code example.com/shop/money.Code(string)}, at time.Time}",
			"Account{id string, limit example.com/shop/money.Amount, at time.Time}"},
		{"collection[string]example.com/x-y/v2.T{a []example.com/x-y/v2.T, b map[string]example.com/z.U(int64)}", "collection[string]example.com/x-y/v2.T"},
		{"example.com/z.U(int64)", "example.com/z.U"},
		{"Node{kids []Node}", "Node{kids []Node}"},
	} {
		if got := legacyFingerprint(c.in); got != c.want {
			t.Errorf("legacyFingerprint(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
