/*-------------------------------------------------------------------------
 *
 * mock_broker.c
 *	  A Kafka cluster for tests and the demo: librdkafka's mock cluster
 *	  (rdkafka_mock.h) in a process of its own, with faults on demand.
 *
 * Usage:
 *	mock_broker [-b BROKERS] [-t TOPIC:PARTITIONS]... [-c FIFO]
 *
 * Starts a mock cluster of BROKERS brokers (default 3) on 127.0.0.1,
 * creates the topics (replication factor min(3, BROKERS)), prints the
 * bootstrap servers as one line on standard output and stays up until
 * SIGTERM or SIGINT.  Faults:
 *
 *	SIGUSR1			set broker 1 down		SIGUSR2		set it up again
 *	-c FIFO			creates the named pipe FIFO and reads commands from it,
 *					one per line:
 *		down ID						rd_kafka_mock_broker_set_down
 *		up ID						rd_kafka_mock_broker_set_up
 *		rtt ID MS					rd_kafka_mock_broker_set_rtt
 *		errors APIKEY CNT ERR		rd_kafka_mock_push_request_errors:
 *									the next CNT requests of API APIKEY
 *									(0 Produce, 1 Fetch, 3 Metadata, ...)
 *									fail with error code ERR (e.g. 7
 *									REQUEST_TIMED_OUT, 6 NOT_LEADER_...)
 *		topic NAME PARTITIONS		rd_kafka_mock_topic_create
 *		leader NAME PARTITION ID	rd_kafka_mock_partition_set_leader (the
 *									mock cluster picks leaders at random:
 *									a test that sets a broker down first
 *									makes it lead a partition)
 *		quit						exit as on SIGTERM
 *	Each command is acknowledged on standard error.
 *
 * tests/kafka/mock_broker.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t down_flag;
static volatile sig_atomic_t up_flag;

static void
on_stop(int signo)
{
	(void) signo;
	stop_flag = 1;
}

static void
on_usr1(int signo)
{
	(void) signo;
	down_flag = 1;
}

static void
on_usr2(int signo)
{
	(void) signo;
	up_flag = 1;
}

static void
usage(void)
{
	fprintf(stderr, "usage: mock_broker [-b BROKERS] [-t TOPIC:PARTITIONS]... [-c FIFO]\n");
}

static int
create_topic(rd_kafka_mock_cluster_t *mc, const char *name, int parts,
			 int brokers)
{
	rd_kafka_resp_err_t err;

	err = rd_kafka_mock_topic_create(mc, name, parts,
									 brokers < 3 ? brokers : 3);
	if (err)
	{
		fprintf(stderr, "mock_broker: could not create topic \"%s\": %s\n",
				name, rd_kafka_err2str(err));
		return -1;
	}
	return 0;
}

/* One control command; returns 1 for quit. */
static int
run_command(rd_kafka_mock_cluster_t *mc, char *line, int brokers)
{
	char		name[256];
	int			a;
	int			b;
	int			c;

	if (sscanf(line, "down %d", &a) == 1)
	{
		rd_kafka_mock_broker_set_down(mc, a);
		fprintf(stderr, "mock_broker: broker %d down\n", a);
	}
	else if (sscanf(line, "up %d", &a) == 1)
	{
		rd_kafka_mock_broker_set_up(mc, a);
		fprintf(stderr, "mock_broker: broker %d up\n", a);
	}
	else if (sscanf(line, "rtt %d %d", &a, &b) == 2)
	{
		rd_kafka_mock_broker_set_rtt(mc, a, b);
		fprintf(stderr, "mock_broker: broker %d rtt %d ms\n", a, b);
	}
	else if (sscanf(line, "errors %d %d %d", &a, &b, &c) == 3)
	{
		rd_kafka_resp_err_t *errs = calloc(b > 0 ? b : 1, sizeof(*errs));

		for (int i = 0; i < b; i++)
			errs[i] = (rd_kafka_resp_err_t) c;
		rd_kafka_mock_push_request_errors_array(mc, (int16_t) a, b, errs);
		free(errs);
		fprintf(stderr, "mock_broker: next %d requests of API %d fail with %s\n",
				b, a, rd_kafka_err2name((rd_kafka_resp_err_t) c));
	}
	else if (sscanf(line, "leader %255s %d %d", name, &a, &b) == 3)
	{
		rd_kafka_resp_err_t err;

		err = rd_kafka_mock_partition_set_leader(mc, name, a, b);
		if (err)
			fprintf(stderr, "mock_broker: could not make broker %d the leader of \"%s\" partition %d: %s\n",
					b, name, a, rd_kafka_err2str(err));
		else
			fprintf(stderr, "mock_broker: broker %d leads \"%s\" partition %d\n",
					b, name, a);
	}
	else if (sscanf(line, "topic %255s %d", name, &a) == 2)
	{
		if (create_topic(mc, name, a, brokers) == 0)
			fprintf(stderr, "mock_broker: topic %s with %d partitions\n",
					name, a);
	}
	else if (strncmp(line, "quit", 4) == 0)
		return 1;
	else if (line[0] != '\0')
		fprintf(stderr, "mock_broker: unknown command \"%s\"\n", line);
	return 0;
}

int
main(int argc, char **argv)
{
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;
	rd_kafka_mock_cluster_t *mc;
	char		errstr[512];
	int			brokers = 3;
	const char *fifo = NULL;
	const char *topics[64];
	int			ntopics = 0;
	int			fd = -1;
	char		line[1024];
	size_t		linelen = 0;
	int			opt;
	struct sigaction sa;

	while ((opt = getopt(argc, argv, "b:t:c:h")) != -1)
	{
		switch (opt)
		{
			case 'b':
				brokers = atoi(optarg);
				break;
			case 't':
				if (ntopics < 64)
					topics[ntopics++] = optarg;
				break;
			case 'c':
				fifo = optarg;
				break;
			default:
				usage();
				return 2;
		}
	}
	if (brokers < 1)
	{
		usage();
		return 2;
	}

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_usr2;
	sigaction(SIGUSR2, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	/* the cluster lives in the threads of a client instance */
	conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)) !=
		RD_KAFKA_CONF_OK)
	{
		fprintf(stderr, "mock_broker: %s\n", errstr);
		return 1;
	}
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (rk == NULL)
	{
		fprintf(stderr, "mock_broker: %s\n", errstr);
		return 1;
	}
	mc = rd_kafka_mock_cluster_new(rk, brokers);
	if (mc == NULL)
	{
		fprintf(stderr, "mock_broker: could not create the mock cluster\n");
		rd_kafka_destroy(rk);
		return 1;
	}
	for (int i = 0; i < ntopics; i++)
	{
		char	   *name = strdup(topics[i]);
		char	   *colon = strrchr(name, ':');
		int			parts = 1;

		if (colon)
		{
			*colon = '\0';
			parts = atoi(colon + 1);
		}
		if (parts < 1 || create_topic(mc, name, parts, brokers) != 0)
		{
			fprintf(stderr, "mock_broker: bad topic \"%s\"\n", topics[i]);
			return 1;
		}
		free(name);
	}
	if (fifo)
	{
		unlink(fifo);
		if (mkfifo(fifo, 0600) != 0)
		{
			fprintf(stderr, "mock_broker: could not create FIFO \"%s\": %s\n",
					fifo, strerror(errno));
			return 1;
		}
		/* O_RDWR: we are a writer too, so there is never an EOF */
		fd = open(fifo, O_RDWR | O_NONBLOCK);
		if (fd < 0)
		{
			fprintf(stderr, "mock_broker: could not open FIFO \"%s\": %s\n",
					fifo, strerror(errno));
			return 1;
		}
	}

	printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
	fflush(stdout);

	while (!stop_flag)
	{
		fd_set		fds;
		struct timeval tv = {0, 200000};

		if (down_flag)
		{
			down_flag = 0;
			rd_kafka_mock_broker_set_down(mc, 1);
			fprintf(stderr, "mock_broker: broker 1 down\n");
		}
		if (up_flag)
		{
			up_flag = 0;
			rd_kafka_mock_broker_set_up(mc, 1);
			fprintf(stderr, "mock_broker: broker 1 up\n");
		}
		FD_ZERO(&fds);
		if (fd >= 0)
			FD_SET(fd, &fds);
		if (select(fd + 1, &fds, NULL, NULL, &tv) <= 0)
			continue;
		if (fd >= 0 && FD_ISSET(fd, &fds))
		{
			ssize_t		n = read(fd, line + linelen, sizeof(line) - 1 - linelen);
			char	   *nl;

			if (n <= 0)
				continue;
			linelen += n;
			line[linelen] = '\0';
			while ((nl = strchr(line, '\n')) != NULL)
			{
				*nl = '\0';
				if (run_command(mc, line, brokers) == 1)
					stop_flag = 1;
				linelen -= (nl + 1 - line);
				memmove(line, nl + 1, linelen + 1);
			}
			if (linelen == sizeof(line) - 1)
				linelen = 0;	/* an overlong line: drop it */
		}
	}

	if (fd >= 0)
	{
		close(fd);
		unlink(fifo);
	}
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(rk);
	return 0;
}
