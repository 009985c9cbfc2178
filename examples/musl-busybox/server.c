/* hello-server: a tiny HTTP/1.0 file server for the musl-busybox example.
 * usage: hello-server PORT ROOT
 * GET / serves ROOT/index.html, GET /NAME serves ROOT/NAME (no "..", no subdirectories),
 * GET /status serves /tmp/run/status (written by the entrypoint). Everything else is 404. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void reply(int c, const char *status, const char *type, const char *body, size_t len) {
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, type, len);
    if (write(c, head, (size_t)n) < 0) return;
    if (len && write(c, body, len) < 0) return;
}

static void serve_file(int c, const char *path) {
    char buf[65536];
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        reply(c, "404 Not Found", "text/plain", "not found\n", 10);
        return;
    }
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    if (n < 0) n = 0;
    const char *type = strstr(path, ".html") ? "text/html" : "text/plain";
    reply(c, "200 OK", type, buf, (size_t)n);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: hello-server PORT ROOT\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)atoi(argv[1]));
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 16) < 0) {
        perror("hello-server: bind/listen");
        return 1;
    }
    fprintf(stderr, "hello-server: listening on :%s, serving %s\n", argv[1], argv[2]);
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0) continue;
        char req[2048] = {0};
        ssize_t n = read(c, req, sizeof req - 1);
        char path[1024] = {0};
        if (n > 0 && sscanf(req, "GET %1000s", path) == 1) {
            char file[2048];
            if (strcmp(path, "/") == 0) {
                snprintf(file, sizeof file, "%s/index.html", argv[2]);
                serve_file(c, file);
            } else if (strcmp(path, "/status") == 0) {
                serve_file(c, "/tmp/run/status");
            } else if (strstr(path, "..") || strchr(path + 1, '/')) {
                reply(c, "404 Not Found", "text/plain", "not found\n", 10);
            } else {
                snprintf(file, sizeof file, "%s%s", argv[2], path);
                serve_file(c, file);
            }
        } else {
            reply(c, "400 Bad Request", "text/plain", "bad request\n", 12);
        }
        close(c);
    }
}
