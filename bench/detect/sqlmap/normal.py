#!/usr/bin/env python3
"""Benign traffic for app.py: ordinary ids, names and sort columns, no quotes.

Usage: normal.py BASE_URL REQUESTS [SEED]
"""
import random
import sys
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

NAMES = ["apple", "banana", "cherry", "date", "elderberry", "fig", "grape",
         "kiwi", "lemon", "mango", "nectarine", "orange", "papaya", "quince",
         "raspberry", "strawberry", "tangerine", "watermelon", "plum", "pear",
         "Granny Smith", "blood orange", "x"]
SORTS = ["id", "name", "price", "price DESC", "name ASC", "2", "3 DESC"]


def request_url(base, rnd):
    r = rnd.random()
    if r < 0.5:
        return "%s/item?id=%d" % (base, rnd.randint(1, 40))
    if r < 0.85:
        return "%s/search?q=%s" % (base, urllib.parse.quote(rnd.choice(NAMES)))
    return "%s/sort?by=%s" % (base, urllib.parse.quote(rnd.choice(SORTS)))


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def main():
    base, n = sys.argv[1], int(sys.argv[2])
    rnd = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 0x5eed)
    urls = [request_url(base, rnd) for _ in range(n)]
    with ThreadPoolExecutor(4) as ex:
        codes = list(ex.map(fetch, urls))
    bad = sum(1 for c in codes if c != 200)
    print("normal: %d requests, %d not 200" % (n, bad))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
