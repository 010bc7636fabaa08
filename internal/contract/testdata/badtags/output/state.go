package p

//theus:output ../elsewhere.go
//theus:output gen_test.go
type State struct{}
