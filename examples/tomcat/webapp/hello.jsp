<%@ page contentType="text/plain; charset=UTF-8" %>hello from tomcat, <%= Runtime.version().feature() > 0 ? "jsp ok" : "jsp broken" %>
