"""The parts of the simulator (:mod:`concerted.simulate` is its public face).

``knobs`` holds what a scenario is made of; ``world`` the platform, its ids, clock and
writers; ``organic``, ``network`` and ``brigade`` each plant one kind of behaviour;
``text`` writes the posts' words in English, Urdu, Hindi and romanised Urdu.
"""
