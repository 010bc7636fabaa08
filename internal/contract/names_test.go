package contract

import "testing"

func TestGoName(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"member_id", "MemberID"},
		{"url", "URL"},
		{"http_status", "HTTPStatus"},
		{"id", "ID"},
		{"api_key", "APIKey"},
		{"item-added.v2", "ItemAddedV2"},
		{"user.updated", "UserUpdated"},
		{"UserUpdated", "UserUpdated"},
		{"memberID", "MemberID"},
		{"memberId", "MemberId"},
		{"Url", "Url"},            // not a whole lower-case word: kept
		{"utf8_name", "UTF8Name"}, // digits do not stop a word from being an initialism
		{"xml_http_request", "XMLHTTPRequest"},
		{"max_email_changes", "MaxEmailChanges"},
		{"type", "Type"}, // Go keywords are fine once converted
		{"v2", "V2"},
		{"item_2fa", "Item2fa"}, // a word starting with a digit is kept as is
		{"__a__b__", "AB"},
		{"a b", "AB"},
		{"été", "Été"},
		{"ids", "Ids"},
		// Not valid Go names: callers check them with validGoName.
		{"2fa", "2fa"},
		{"", ""},
		{"--", ""},
	}
	for _, tt := range tests {
		if got := GoName(tt.in); got != tt.want {
			t.Errorf("GoName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestValidGoName(t *testing.T) {
	for name, want := range map[string]bool{
		"User": true, "Été": true, "X1": true,
		"": false, "2fa": false, "user": false, "日本": false,
	} {
		if got := validGoName(name); got != want {
			t.Errorf("validGoName(%q) = %v, want %v", name, got, want)
		}
	}
}
