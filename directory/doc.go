// Package directory signs people in against an LDAP directory (Active
// Directory, OpenLDAP): users.ldap in the config.
//
// A sign-in searches for the user with the service account (bind_dn),
// binds as the user on a short-lived connection of its own to check the
// password, then finds the profile: the first of users.ldap.groups the
// user belongs to, nested membership included. Active Directory answers
// nested membership in one query (the in-chain matching rule
// 1.2.840.113556.1.4.1941); other servers get a bounded walk up memberOf
// (or, without memberOf, member). Which one a server takes is found on
// the first sign-in and remembered.
//
// Results are cached by user and a keyed hash of the password for
// cache_minutes; while the directory cannot be reached, cached sign-ins
// are honoured for up to StaleFor past that. The proxy keeps its own
// per-header cache in front of this one, so a signed-in user's requests
// never wait for the directory.
package directory
