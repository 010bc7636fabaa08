package contract

import (
	"slices"
	"testing"
)

func TestSuggest(t *testing.T) {
	tests := []struct {
		name       string
		candidates []string
		want       []string
	}{
		{"usr", []string{"user", "users_by_id", "count"}, []string{"user"}},
		{"emial", []string{"email", "id"}, []string{"email"}},        // transposition
		{"Domain", []string{"domain", "global"}, []string{"domain"}}, // case only
		{"user.updatd", []string{"user.updated", "user.deleted"}, []string{"user.updated"}},
		{"semantics", []string{"doc", "semantic", "args"}, []string{"semantic"}},
		{"cat", []string{"bat", "car", "cut", "dog"}, []string{"bat", "car"}}, // ties: two, sorted
		{"maximum", []string{"max", "min"}, nil},                              // too far
		{"a", []string{"b", "ab"}, nil},                                       // a one-letter name is no misspelling
		{"user", []string{"user"}, nil},                                       // itself
		{"", []string{"a"}, nil},
	}
	for _, tt := range tests {
		if got := suggest(tt.name, tt.candidates); !slices.Equal(got, tt.want) {
			t.Errorf("suggest(%q, %q) = %q, want %q", tt.name, tt.candidates, got, tt.want)
		}
	}
}

func TestDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"", "abc", 3}, {"abc", "", 3}, {"kitten", "sitting", 3},
		{"ab", "ba", 1}, {"ca", "abc", 3}, {"héllo", "hello", 1},
	}
	for _, tt := range tests {
		if got := distance(tt.a, tt.b); got != tt.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
