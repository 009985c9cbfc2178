// jdk example: a tiny HTTP server on :8080 using com.sun.net.httpserver.
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;

public class Server {
    private static void send(HttpExchange ex, int status, String type, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", type);
        ex.sendResponseHeaders(status, bytes.length);
        try (OutputStream os = ex.getResponseBody()) {
            os.write(bytes);
        }
    }

    public static void main(String[] args) throws IOException {
        int port = Integer.parseInt(System.getenv().getOrDefault("PORT", "8080"));
        HttpServer server = HttpServer.create(new InetSocketAddress(port), 0);
        server.createContext("/", ex -> {
            if (!ex.getRequestURI().getPath().equals("/")) {
                send(ex, 404, "text/plain", "not found\n");
                return;
            }
            send(ex, 200, "text/html; charset=utf-8",
                "<!doctype html><html><body><h1>jdk</h1><p><a href=\"/api/info\">info</a></p></body></html>");
        });
        server.createContext("/api/info", ex -> send(ex, 200, "application/json",
            "{\"service\":\"jdk\",\"java\":\"" + System.getProperty("java.version") + "\"}"));
        server.start();
        System.out.println("jdk example listening on " + port);
    }
}
