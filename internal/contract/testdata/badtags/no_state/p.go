// Package p declares no State.
package p

//theus:topic name=x
type X struct{}
