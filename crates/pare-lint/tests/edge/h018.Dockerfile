#escape=`
FROM debian
