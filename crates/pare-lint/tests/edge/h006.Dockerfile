FROM debian:12
	RUN cd /x
