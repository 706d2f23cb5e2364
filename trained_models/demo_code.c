/*
 * A small table of named counters, written for the interpret demo.
 *
 * Each bucket holds a singly linked chain of entries. Lookups walk the
 * chain; inserts go to the front. The table grows when it is three
 * quarters full, so chains stay short.
 */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

struct counter {
	struct counter	*next;
	unsigned long	 hash;
	long		 value;
	char		 name[32];
};

struct table {
	struct counter	**buckets;
	size_t		  nbuckets;
	size_t		  count;
};

/* FNV-1a over the bytes of a name. */
static unsigned long
hash_name(const char *name)
{
	unsigned long h = 2166136261UL;

	while (*name != '\0') {
		/* xor in the byte, then multiply by the FNV prime */
		h ^= (unsigned char)*name++;
		h *= 16777619UL;
	}
	return (h);
}

static int
table_init(struct table *t, size_t nbuckets)
{
	t->buckets = calloc(nbuckets, sizeof *t->buckets);
	if (t->buckets == NULL)
		return (-1);
	t->nbuckets = nbuckets;
	t->count = 0;		/* empty: every chain is NULL */
	return (0);
}

/* Move every entry into a table twice the size; on failure keep the old one. */
static int
table_grow(struct table *t)
{
	struct counter	**nb, *c, *next;
	size_t		  i, n = t->nbuckets * 2;

	nb = calloc(n, sizeof *nb);
	if (nb == NULL)
		return (-1);
	for (i = 0; i < t->nbuckets; i++) {
		for (c = t->buckets[i]; c != NULL; c = next) {
			next = c->next;	/* save it: c moves to another chain */
			c->next = nb[c->hash % n];
			nb[c->hash % n] = c;
		}
	}
	free(t->buckets);
	t->buckets = nb;
	t->nbuckets = n;
	return (0);
}

static struct counter *
table_find(struct table *t, const char *name)
{
	unsigned long	 h = hash_name(name);
	struct counter	*c;

	for (c = t->buckets[h % t->nbuckets]; c != NULL; c = c->next) {
		if (c->hash == h && strcmp(c->name, name) == 0)
			return (c);
	}
	return (NULL);
}

/*
 * Add delta to the counter called name, creating it at zero first.
 * Returns the new value, or -1 with errno set if memory ran out.
 */
static long
table_add(struct table *t, const char *name, long delta)
{
	struct counter	*c;
	size_t		 slot;

	c = table_find(t, name);
	if (c == NULL) {
		if (strlen(name) >= sizeof c->name) {
			fprintf(stderr, "counter name too long: %s\n", name);
			return (-1);
		}
		/* keep the load factor at or below three quarters */
		if (4 * (t->count + 1) > 3 * t->nbuckets) {
			if (table_grow(t) != 0)
				return (-1);
		}
		c = calloc(1, sizeof *c);
		if (c == NULL)
			return (-1);
		c->hash = hash_name(name);
		strcpy(c->name, name);
		slot = c->hash % t->nbuckets;
		c->next = t->buckets[slot];
		t->buckets[slot] = c;
		t->count++;
	}
	c->value += delta;
	return (c->value);
}

static void
table_print(struct table *t, FILE *out)
{
	struct counter	*c;
	size_t		 i;

	for (i = 0; i < t->nbuckets; i++) {
		for (c = t->buckets[i]; c != NULL; c = c->next) {
			/* counters that went back to zero are not printed */
			if (c->value != 0)
				fprintf(out, "%-31s %ld\n", c->name, c->value);
		}
	}
}

static void
table_free(struct table *t)
{
	struct counter	*c, *next;
	size_t		 i;

	for (i = 0; i < t->nbuckets; i++) {
		for (c = t->buckets[i]; c != NULL; c = next) {
			next = c->next;
			free(c);
		}
	}
	free(t->buckets);
	t->buckets = NULL;	/* a second table_free does nothing */
	t->nbuckets = t->count = 0;
}

/* Count the words of standard input, one counter per word. */
int
main(void)
{
	struct table	 t;
	char		 word[32];
	int		 ch, len = 0;

	if (table_init(&t, 8) != 0) {
		perror("table_init");
		return (1);
	}
	while ((ch = getchar()) != EOF) {
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) {
			if (len < (int)sizeof word - 1)
				word[len++] = (char)ch;
			continue;
		}
		if (len > 0) {		/* the end of a word */
			word[len] = '\0';
			if (table_add(&t, word, 1) < 0) {
				table_free(&t);
				return (1);
			}
			len = 0;
		}
	}
	table_print(&t, stdout);
	table_free(&t);
	return (0);
}
