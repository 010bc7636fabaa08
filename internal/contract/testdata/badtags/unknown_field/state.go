package p

type State struct {
	Domain struct {
		User User `theus:"user"`
	} `theus:"domain"`
}

type User struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

//theus:process
type Update struct {
	ByJSON   string `theus:"in,path=domain.user.email"`
	ByGoName string `theus:"in,path=domain.user.Email"`
	Typo     string `theus:"in,path=domain.user.emial"`
	Missing  User   `theus:"in,path=domain.usr"`
	Zone     User   `theus:"in,path=domestic.user"`
	Deep     string `theus:"in,path=domain.user.email.x"`
}
