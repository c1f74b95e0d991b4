"""The shipped scenario files, installed as the package data of `avalanche_hsf.scenarios`."""
