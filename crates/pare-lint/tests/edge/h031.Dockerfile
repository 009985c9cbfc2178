FROM debian:12 AS a b
