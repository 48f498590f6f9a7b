// Package fixturetest unpacks the repository's etcd fixtures
// (fixtures/<set>/<member>.tar.gz, see fixtures/README.md) for the interop
// module's tests, with the system tar.
package fixturetest
