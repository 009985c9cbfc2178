FROM debian@sha256:abcdef
