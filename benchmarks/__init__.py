"""The django-conditional benchmark: ``python -m benchmarks`` (see the README, "Benchmark").

Builds its own data, measures every configuration side by side in one run and
prints ratios. Nothing here is imported by the package or its tests' settings.
"""
