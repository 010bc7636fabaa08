package p

type State struct {
	Domain struct {
		User string `theus:"user"`
	} `theus:"domian"`
	Global struct {
		Max int `theus:"max"`
	} `theus:"global,extra"`
	Config struct{} `theus:"global"`
	Other  int
}
