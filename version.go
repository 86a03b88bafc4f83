package tether

// Version is the release of Tether this code is, in semantic versioning:
// the Go module is tagged "v" + Version, and the npm package of the
// JavaScript client (js-client/package.json) and the latest release in
// CHANGELOG.md carry the same number; a test checks both. The wire protocol
// has a version of its own, ProtocolVersion.
const Version = "0.1.0"
