package p

type State struct{}

//theus:process
type Count int

//theus:topic name=numbers
type Number = int

// Run is a function, not a type.
//
//theus:process
func Run() {}

//theus:process
type Generic[T any] struct{ X T }

//theus:rule {path: domain.x, min: 0}
type NotAProcess struct{}
