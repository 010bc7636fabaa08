package p

type State struct {
	Domain struct {
		User  User            `theus:"user,colection"`
		Items map[string]User `theus:"items,collection"`
		Bad   int             `theus:"bad,collection"`
		Empty int             `theus:""`
		Dot   int             `theus:"a.b"`
	} `theus:"domain"`
	Global struct {
		Limits map[string]int `theus:"limits,collection"`
	} `theus:"global"`
}

type User struct{ ID, Email string }

//theus:process
type Update struct {
	User  User `theus:"in,outt,path=domain.user"`
	Items int  `theus:"path=domain.bad"`
	Both  User `theus:"in"`
	Plain User
}
