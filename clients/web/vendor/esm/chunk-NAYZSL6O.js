import{s as o,y as t}from"./chunk-YQTTNPJW.js";import{L as r,P as n}from"./chunk-OXVWWSE2.js";var s=0,c=(i,e)=>{r(i,s),n(i,e)},m=(i,e,a)=>{o(i)===s&&a(e,t(i))};export{s as a,c as b,m as c};
