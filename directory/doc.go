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
// Connections are TLS: ldaps:// from the first byte, or ldap:// upgraded
// with StartTLS (start_tls) before anything else is sent, the server's
// certificate verified against users.ldap.ca_file (else the system's
// roots) for the host in the URL; a plain connection only to this
// machine. Connecting and the handshake take at most 5 seconds, and a
// certificate that is not accepted makes the directory unreachable with an
// error that says what to fix (the CA file, or the name in the URL).
//
// Results are cached by user and a keyed hash of the password for
// cache_minutes; while the directory cannot be reached, cached sign-ins
// are honoured for up to StaleFor past that. The proxy keeps its own
// per-header cache in front of this one, so a signed-in user's requests
// never wait for the directory.
package directory
