"""ApplyToAll: one call with every element, also when there is none, with side inputs."""

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from eventlake.transforms.gather import ApplyToAll


class _Total(beam.DoFn):
    def setup(self):
        self.ready = True

    def process(self, items, offset, scale=1):
        assert self.ready
        yield (len(items), (sum(items) + offset) * scale)


def test_one_call_with_every_element_and_the_side_inputs():
    with beam.Pipeline() as p:
        numbers = p | "Numbers" >> beam.Create(range(10))
        offset = beam.pvalue.AsSingleton(p | "Offset" >> beam.Create([100]))
        scale = beam.pvalue.AsSingleton(p | "Scale" >> beam.Create([2]))
        assert_that(numbers | ApplyToAll(_Total(), offset, scale=scale), equal_to([(10, 290)]))


def test_an_empty_input_still_gets_its_call():
    with beam.Pipeline() as p:
        nothing = p | "Nothing" >> beam.Create([])
        assert_that(nothing | ApplyToAll(_Total(), 5), equal_to([(0, 5)]))
