// Package recyclable lets runtime/store/memory tell the engine that the
// engine may reuse the memory of a snapshot once a later commit replaced
// it: the store keeps no Record.State past the next Commit.
//
// The method takes a Token, which only packages under runtime can name, so
// no other store can claim it by accident; and it returns the store that
// makes the claim, so that a type embedding the memory store, which
// inherits the method but may keep states of its own, does not qualify:
// the engine compares the result with the store it was given.
package recyclable

// Token is the argument of Store.ForgetsReplacedStates.
type Token struct{}

// Store is implemented by runtime/store/memory.
type Store interface {
	// ForgetsReplacedStates returns the store that keeps no Record.State
	// past the Commit after the one that handed it over.
	ForgetsReplacedStates(Token) any
}
