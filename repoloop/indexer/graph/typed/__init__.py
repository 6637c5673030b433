"""Call resolution by declared types (Go, Rust, JS/TS, Java): see `typed.engine`."""
