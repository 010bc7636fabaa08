package p

type State struct {
	Domain struct {
		User string `theus:"user"`
	} `theus:"domain"`
}
