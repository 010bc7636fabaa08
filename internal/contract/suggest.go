package contract

import (
	"slices"
	"strconv"
	"strings"
)

// Suggestions for names that resolve to nothing: most unknown names are a
// declared name misspelt, and saying which one saves a look through the
// file.

// maxSuggestions is how many names a message offers at most: more than
// two is a list, not a suggestion.
const maxSuggestions = 2

// suggest returns the names in candidates closest to name, at most two, in
// alphabetical order, or nil when none is close enough to be a likely
// misspelling. Names are compared without regard to case, with the optimal
// string alignment distance (insertions, deletions, substitutions and
// transpositions of adjacent characters): a name qualifies when its
// distance is at most one per four characters of name (at least one, at
// most two: "user.created" is no misspelt "user.updated") and smaller than
// name's length, so that a one-letter name
// is never said to be a misspelt other one. name itself is never
// suggested.
func suggest(name string, candidates []string) []string {
	n := len([]rune(name))
	limit := min(max(1, n/4), 2)
	if n <= limit {
		limit = n - 1
	}
	best := limit
	var out []string
	lower := strings.ToLower(name)
	for _, c := range candidates {
		if c == name {
			continue
		}
		d := distance(lower, strings.ToLower(c))
		switch {
		case d > best:
		case d < best || len(out) == 0:
			best, out = d, []string{c}
		case d == best && !slices.Contains(out, c):
			out = append(out, c)
		}
	}
	slices.Sort(out)
	if len(out) > maxSuggestions {
		out = out[:maxSuggestions]
	}
	return out
}

// didYouMean formats the suggestions for name as the end of a message:
// `; did you mean "x"?`, or "" when there is none. show, when not nil,
// turns a suggested name into what the message offers (a whole path for
// a field name, say).
func didYouMean(name string, candidates []string, show func(string) string) string {
	s := suggest(name, candidates)
	if len(s) == 0 {
		return ""
	}
	quoted := make([]string, len(s))
	for i, c := range s {
		if show != nil {
			c = show(c)
		}
		quoted[i] = strconv.Quote(c)
	}
	return "; did you mean " + strings.Join(quoted, " or ") + "?"
}

// distance is the optimal string alignment distance between a and b,
// counted in runes.
func distance(a, b string) int {
	s, t := []rune(a), []rune(b)
	// Three rows of the dynamic programming table: two back, one back and
	// the current one.
	prev2 := make([]int, len(t)+1)
	prev := make([]int, len(t)+1)
	cur := make([]int, len(t)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(s); i++ {
		cur[0] = i
		for j := 1; j <= len(t); j++ {
			cost := 1
			if s[i-1] == t[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && s[i-1] == t[j-2] && s[i-2] == t[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(t)]
}
