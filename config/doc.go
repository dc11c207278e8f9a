// Package config reads a Tahoe-LAFS node directory the way Tahoe-LAFS
// (1.12 to HEAD) reads it, and merges what it finds into an immutable
// [ServerMap] of storage servers.
//
// Files read (see [Load]):
//
//	NODEDIR/tahoe.cfg                                    [ParseTahoeConfig]
//	NODEDIR/private/introducers.yaml                     [ParseIntroducers]
//	NODEDIR/private/introducer_<petname>_cache.yaml      [ParseCache], [WriteCache]
//	NODEDIR/private/servers.yaml                         [ParseServers]
//	NODEDIR/private/node.pem                             [LoadIdentity]
//
// # Stricter than Tahoe where Tahoe silently loses servers
//
// The formats and defaults are Tahoe's, but this package refuses input that
// Tahoe accepts and then quietly mishandles:
//
//   - A key or section repeated in tahoe.cfg is an error (Tahoe's
//     configparser runs with strict=False and keeps the last one), and so
//     is a repeated YAML mapping key (PyYAML keeps the last one).
//   - A section that differs from [node], [connections], [tor], [i2p] or
//     [client] only in case is an error instead of being ignored.
//   - servers.yaml "connections:" overrides are validated (unknown hint
//     types and handler names are errors; Tahoe silently disables those
//     hints), and with reveal-IP-address = false an override routing tcp
//     hints over direct TCP is a privacy error (Tahoe checks only
//     tahoe.cfg).
//   - One bad servers.yaml entry rejects the file instead of being skipped,
//     so a reload keeps the previous map instead of dropping a server.
//   - Introducer petnames must be usable in a cache file name.
//   - Introducer caches keep each announcement's signed form (extra keys
//     "msg" and "sig", which Tahoe ignores) and are verified on load; an
//     entry with a bad signature is dropped and reported. Tahoe's own
//     unsigned caches still load, flagged unverified.
//   - Announcements of one server from several introducers are merged by
//     seqnum with a deterministic tie-break (see [Merge]), so they do not
//     cause reconnection churn; [ServerMap.Diff] reports only changes that
//     matter for dialling ([Entry.SameEffect]).
//
// Two deliberate leniencies: [node] timeout.keepalive and
// timeout.disconnect accept decimal fractions of seconds (Tahoe calls
// int()), and YAML is read with yaml.v3's YAML 1.2 scalar rules, so an
// unquoted yes/no/on/off is a string here where PyYAML would make it a
// boolean.
//
// # Errors
//
// Every error names its file, and where possible its line, section and
// field, as a *[FileError] wrapping one of the class sentinels
// ([ErrSyntax], [ErrDuplicate], [ErrUnknownKey], [ErrInvalidValue],
// [ErrType], [ErrMissing], [ErrEmptyDocument], [ErrConflict], [ErrPrivacy],
// [ErrUnknownKeyType], [ErrBadSignature]); test with errors.Is and
// errors.As. YAML line numbers come from yaml.v3 nodes.
//
// All loaders are pure functions returning new values. A caller that
// reloads a file and gets an error keeps the value it already has; nothing
// is ever half-updated.
//
// # Why a hand-written INI parser
//
// tahoe.cfg is read by Python's configparser, whose rules differ from
// every Go INI library in details that matter here: "key: value" as well
// as "key = value", comments only on their own line (so "furl = pb://...
// # note" keeps the note in the value, which Tahoe then rejects), indented
// continuation lines, blank lines kept inside values, "%"-interpolation
// (a lone "%" is an error, "%%" is "%"), case-folded keys but
// case-sensitive section names, and an optional UTF-8 BOM. The parser in
// this package is about 200 lines, follows CPython's
// RawConfigParser._read and BasicInterpolation line by line, has no
// dependency, and reports the line of every error.
package config
