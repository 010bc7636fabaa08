// Package money is a package whose types the test contracts import.
package money

// Amount is a struct that a contract may hold in its state.
type Amount struct {
	Units    int64  `json:"units"`
	Currency string `json:"currency,omitempty"`
}
