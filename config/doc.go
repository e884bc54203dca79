// Package config is remediator's configuration: the YAML file format, its defaults, and the
// checks run at start so that a mistake fails loudly, naming the file, the entry and the
// problem, instead of surfacing as a lost event later.
//
// Every default of the service lives here, in [Config.SetDefaults] (defaults.go): the worker
// and the broker take each value explicitly. "None", "never" and "forever" are explicit values
// (quickRetries 0, maxReconnects 0 / -1, connectAttempts -1, maxBytes -1), never a zero that a
// later layer reinterprets. [Config.Validate] checks ranges and relations and names the key
// path of each problem; [Config.CheckSecrets] checks, for `remediator run`, that every secret
// the configuration refers to is there.
//
// [Default] returns the built-in defaults. [Load] reads a file over them. The shipped default
// configuration, used when no file is given, routes the documented sample events to flows
// served by the built-in Okta Workflows simulator, so the whole pipeline runs with no Okta org.
package config
