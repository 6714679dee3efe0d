package config

import "errors"

// User is one line of the users file.
type User struct {
	Name         string
	Profile      string
	PasswordHash string // bcrypt
	Line         int
}

// LoadUsers reads a users CSV (user,profile,password_hash; an optional
// header line; '#' comment lines).
func LoadUsers(path string) ([]User, error) {
	return nil, errors.New("config.LoadUsers: not implemented yet")
}

// AddUser adds or updates a user in the users file at path, storing a
// bcrypt hash of password. The file is rewritten atomically.
func AddUser(path, name, profile, password string) error {
	return errors.New("config.AddUser: not implemented yet")
}
