// Package osimc is the Operating System Integrity Measurement Collector: it
// reads the endpoint's operating system facts (os-release, kernel release,
// installed packages, listening sockets, IP forwarding) and sends them as the
// IETF PA-TNC attributes of the Operating System PA subtype (RFC 5792 §3.5,
// §4.2) to the verifier of the same subtype, package osimv.
//
// Every path the collector reads is configurable and prefixed with
// Config.Root, so tests point it at fixture trees. The parsers are bounded:
// file sizes, line lengths and package counts are capped, and malformed
// lines are skipped rather than trusted.
//
// What changes only when a file is rewritten (os-release, the dpkg status
// file, the RPM database) is parsed once and kept while stat(2) shows the
// file unchanged; /proc is read on every collection. See Collector.
package osimc
