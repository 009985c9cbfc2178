//! Runtimes that run an image with the sensor: docker and embedded.
