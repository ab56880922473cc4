from sympy import *
x=symbols("x")
print(factor(x**2-1))