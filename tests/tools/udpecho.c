/*
 * udpecho - a UDP echo server on 127.0.0.1:PORT, for the user-mode
 * network tests in nested guests (passt maps the guest's gateway
 * address to the loopback).  Static, runs until killed.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct sockaddr_in from;
	socklen_t fl = sizeof(from);
	char buf[2048];
	ssize_t n;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	sa.sin_port = htons(argc > 1 ? atoi(argv[1]) : 5555);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("udpecho");
		return 1;
	}
	while ((n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from,
			     &fl)) >= 0) {
		sendto(fd, buf, n, 0, (struct sockaddr *)&from, fl);
		fl = sizeof(from);
	}
	return 1;
}
