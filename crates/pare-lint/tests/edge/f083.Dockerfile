FROM scratch AS x
FROM x
