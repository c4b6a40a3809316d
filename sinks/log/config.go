// Package log is the log target: it writes each delivery as one JSON line.
package log

// Config is a target of `type: log`. It has no settings.
type Config struct{}

// SetDefaults does nothing.
func (c *Config) SetDefaults() {}

// Validate accepts everything.
func (c *Config) Validate() error { return nil }
