// Package config is remediator's configuration: the YAML file format, its defaults, and the
// checks run at start so that a mistake fails loudly, naming the file, the entry and the
// problem, instead of surfacing as a lost event later.
//
// [Default] returns the built-in defaults. [Load] reads a file over them. The shipped default
// configuration, used when no file is given, routes the documented sample events to flows
// served by the built-in Okta Workflows simulator, so the whole pipeline runs with no Okta org.
package config
